export { createLogger, silentLogger, levelFromVerbosity } from "./logger.js";
export type { Logger, LoggerOptions, LogLevel } from "./logger.js";
export { createRequestLog } from "./request-log.js";
export type { RequestLog } from "./request-log.js";
