export { ConnectionLimit, type ConnectionLimitOptions } from "./connection-limit.js";
export { OccurrenceLog, type WarnLogger } from "./occurrence-log.js";
export { baseDescriptors, openFileLimit } from "./fd-limit.js";
