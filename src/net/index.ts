export { ConnectionLimit, type ConnectionLimitOptions } from "./connection-limit.js";
export { OccurrenceLog, type WarnLogger } from "./occurrence-log.js";
