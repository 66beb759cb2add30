export {
  parseConfig,
  parseServeSwitches,
  describeConfig,
  serveUsage,
  serveFlags,
} from "./config.js";
export type { Config, Identity, StatusVersion } from "./config.js";
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
