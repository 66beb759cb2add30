export { createLogger, silentLogger, levelFromVerbosity } from "./logger.js";
export type { Logger, LoggerOptions } from "./logger.js";
