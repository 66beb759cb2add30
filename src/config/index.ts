export { parseConfig, describeConfig } from "./config.js";
export type { Config, StatusVersion } from "./config.js";
export type { Identity } from "./identity.js";
export { parseServeSwitches, serveUsage, serveFlags } from "./serve-flags.js";
export {
  UsageError,
  asksForHelp,
  flagUsage,
  parseFlags,
  parseDuration,
  parseUint,
  parseBool,
} from "./flags.js";
export type { FlagSpec, ParsedFlags } from "./flags.js";
export { cloudByName } from "./clouds.js";
