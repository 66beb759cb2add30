/**
 * `keyvault-kms doctor [serve flags]`: checks a serve configuration end to end, one verdict per
 * line on standard output, and exits 0 when every check passed (warnings included), 1 otherwise.
 */
import {
  parseConfig,
  flagUsage,
  parseFlags,
  parseServeSwitches,
  serveFlags,
  UsageError,
  type Config,
} from "../config/index.js";
import {
  createKeyVaultWrapper,
  type KeyDetailsInput,
  type KeyVaultWrapper,
  type KeyVaultWrapperOptions,
} from "../keyvault/index.js";
import { buildInfo, userAgent } from "../version.js";
import {
  checkClockSkew,
  checkExpiry,
  checkKey,
  checkRoundTrip,
  checkToken,
  type KeyFacts,
} from "./doctor-checks.js";
import { configFailure, configVerdict } from "./doctor-config.js";
import { checkSocketPath } from "./doctor-socket.js";
import { formatVerdict, withTimeout, type Verdict } from "./doctor-verdict.js";
import { exitCodes, type CommandIo } from "./io.js";
import { keyVaultSetup } from "./key-vault-setup.js";

/** Upper bound on each check. */
export const checkTimeoutMs = 10_000;

export const doctorChecks = [
  "config",
  "socket",
  "token",
  "key",
  "round-trip",
  "clock-skew",
  "key-expiry",
] as const;
type CheckName = (typeof doctorChecks)[number];

const prerequisite: Readonly<Record<CheckName, CheckName | undefined>> = {
  config: undefined,
  socket: "config",
  token: "config",
  key: "token",
  "round-trip": "key",
  "clock-skew": "key",
  "key-expiry": "key",
};

export function doctorUsage(): string {
  return (
    "Usage: keyvault-kms doctor [serve's flags]\n\n" +
    "Checks the configuration serve would run with: config, socket path, token, key, a wrap/unwrap\n" +
    "round trip, clock skew and key expiry. Exit code 0 when every check passes (warnings\n" +
    "included), 1 when one fails, 2 for a command line that cannot be parsed.\n\n" +
    `Flags (serve's):\n${flagUsage(serveFlags)}\n`
  );
}

/** The Azure objects serve would build, without metrics or logging. */
interface Setup {
  readonly config: Config;
  readonly credential: KeyVaultWrapperOptions["credential"];
  readonly wrapper: KeyVaultWrapper;
  readonly keys: KeyDetailsInput;
}

function azureClients(config: Config): Setup {
  // Exactly what serve would build (no metrics observer: doctor serves no /metrics).
  const { wrapperOptions } = keyVaultSetup(config);
  const { credential } = wrapperOptions;
  const keys: KeyDetailsInput = {
    vaultUrl: config.vaultUrl,
    vaultHost: config.vaultHost,
    keyName: config.keyName,
    credential,
    userAgent,
    ...(wrapperOptions.caPem === undefined ? {} : { caPem: wrapperOptions.caPem }),
    ...(wrapperOptions.proxyMode === undefined ? {} : { proxyMode: wrapperOptions.proxyMode }),
  };
  return { config, credential, wrapper: createKeyVaultWrapper(wrapperOptions), keys };
}

export async function doctorCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  // A command line that does not parse is a usage error (exit 2), as for serve.
  try {
    const switches = parseServeSwitches(argv);
    if (switches.help) {
      io.out(doctorUsage());
      return exitCodes.ok;
    }
    if (switches.version) {
      io.out(JSON.stringify(buildInfo));
      return exitCodes.ok;
    }
    const { rest } = parseFlags(argv, serveFlags, io.env);
    if (rest.length > 0) throw new UsageError(`unexpected argument: ${rest[0] ?? ""}`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`keyvault-kms doctor: ${err.message}`);
      return exitCodes.usage;
    }
    throw err;
  }

  const results = new Map<CheckName, Verdict>();
  let setup: Setup | undefined;
  let facts: KeyFacts | undefined;
  const notRun = (why: string): Promise<Verdict> =>
    Promise.resolve({ status: "FAIL", detail: `not run: ${why}` });

  const run = async (name: CheckName, check: (signal: AbortSignal) => Promise<Verdict>) => {
    const needs = prerequisite[name];
    let verdict: Verdict;
    if (
      needs !== undefined &&
      results.get(needs)?.status !== "ok" &&
      results.get(needs)?.status !== "warn"
    ) {
      verdict = { status: "FAIL", detail: `not run: check "${needs}" failed` };
    } else if (io.stop.aborted) {
      verdict = { status: "FAIL", detail: "not run: interrupted" };
    } else {
      try {
        verdict = await withTimeout(checkTimeoutMs, `check ${name}`, check);
      } catch (err) {
        verdict = {
          status: "FAIL",
          detail: (err as Error).message,
          fix:
            name === "socket"
              ? "check the socket directory and its permissions"
              : `check that ${setup?.config.vaultHost ?? "Key Vault"} and the token endpoint are reachable from this node`,
        };
      }
    }
    results.set(name, verdict);
    const skipped = verdict.detail.startsWith("not run:");
    for (const line of formatVerdict(name, verdict, skipped)) io.out(line);
  };

  await run("config", async () => {
    let config: Config;
    try {
      config = await parseConfig(argv, io.env);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      return configFailure(err.message);
    }
    setup = azureClients(config);
    return configVerdict(config);
  });
  await run("socket", () =>
    setup === undefined ? notRun("no config") : checkSocketPath(setup.config.listenAddr),
  );
  await run("token", (signal) =>
    setup === undefined ? notRun("no config") : checkToken(setup.config, setup.credential, signal),
  );
  await run("key", async (signal) => {
    if (setup === undefined) return notRun("no config");
    const result = await checkKey(setup.config, setup.wrapper, setup.keys, signal);
    facts = result.facts;
    return result.verdict;
  });
  await run("round-trip", (signal) =>
    setup === undefined || facts === undefined
      ? notRun("no current key version")
      : checkRoundTrip(setup.config, setup.wrapper, facts.current, signal),
  );
  await run("clock-skew", () =>
    setup === undefined || facts === undefined
      ? notRun("no Key Vault answer")
      : Promise.resolve(checkClockSkew(setup.config, facts)),
  );
  await run("key-expiry", () =>
    setup === undefined || facts === undefined
      ? notRun("no current key version")
      : Promise.resolve(checkExpiry(setup.config, facts)),
  );

  const verdicts = [...results.values()];
  const failed = verdicts.filter((v) => v.status === "FAIL").length;
  const warned = verdicts.filter((v) => v.status === "warn").length;
  io.err(
    failed === 0
      ? `keyvault-kms doctor: all ${verdicts.length} checks passed${warned === 0 ? "" : ` (${warned} with a warning)`}`
      : `keyvault-kms doctor: ${failed} of ${verdicts.length} checks failed or could not run`,
  );
  return failed === 0 ? exitCodes.ok : exitCodes.failed;
}
