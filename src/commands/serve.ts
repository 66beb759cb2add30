import {
  parseConfig,
  parseServeSwitches,
  serveUsage,
  UsageError,
  type Config,
} from "../config/index.js";
import { ListenAddressError, parseListenAddress } from "../grpc/index.js";
import { createLogger } from "../log/index.js";
import { buildInfo } from "../version.js";
import { exitCodes, untilAborted, type CommandIo } from "./io.js";
import { startPlugin } from "./plugin.js";

/** Runs the plugin with a parsed config until `io.stop` fires. */
export async function runServe(config: Config, io: CommandIo): Promise<number> {
  const logger = createLogger({ verbosity: config.verbosity });
  let plugin;
  try {
    plugin = await startPlugin(config, logger);
  } catch (err) {
    logger.error({ err }, "cannot start");
    io.err(`keyvault-kms: ${(err as Error).message}`);
    return exitCodes.failed;
  }
  await untilAborted(io.stop);
  logger.info({}, "signal received: draining in-flight calls");
  await plugin.stop();
  return exitCodes.ok;
}

export async function serveCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  let config: Config;
  try {
    const switches = parseServeSwitches(argv);
    if (switches.help) {
      io.out(serveUsage());
      return exitCodes.ok;
    }
    if (switches.version) {
      io.out(JSON.stringify(buildInfo));
      return exitCodes.ok;
    }
    config = await parseConfig(argv, io.env);
    parseListenAddress(config.listenAddr);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ListenAddressError) {
      io.err(`keyvault-kms: ${err.message}`);
      return exitCodes.usage;
    }
    throw err;
  }
  return runServe(config, io);
}
