import { pino, type Logger as PinoLogger } from "pino";

/** The logging surface other modules accept; a pino logger satisfies it. */
export interface Logger {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  /** Lets hot paths skip building a log object nobody will see. */
  isLevelEnabled(level: LogLevel): boolean;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

export interface LoggerOptions {
  /** The Go plugin's `--v`. */
  readonly verbosity: number;
  /**
   * Tests: a stream to write to instead of stderr (e.g. to search the output for secrets). Logs
   * never go to stdout, which carries only a command's output.
   */
  readonly destination?: NodeJS.WritableStream;
}

/**
 * The Go plugin's `--v` (mlog: 0 warning/error, 2 info, 4 debug, 6 trace). Debug and trace match.
 * Our info level holds only start-up, key and shutdown events, the class the Go plugin logs with
 * mlog.Always at every level, so info shows from --v=0; nothing per request is logged at info.
 */
export function levelFromVerbosity(v: number): "info" | "debug" | "trace" {
  if (v >= 6) return "trace";
  if (v >= 4) return "debug";
  return "info";
}

/**
 * Redaction is only a safety net: no caller passes secrets or key material to the logger. The
 * paths cover the shapes such values would have if one ever slipped in.
 */
const redactPaths = [
  "clientSecret",
  "*.clientSecret",
  "aadClientSecret",
  "*.aadClientSecret",
  "plaintext",
  "*.plaintext",
  "seed",
  "*.seed",
  "authorization",
  "*.authorization",
  "*.headers.authorization",
  "token",
  "*.token",
  "accessToken",
  "*.accessToken",
  "access_token",
  "*.access_token",
  "ciphertext",
  "*.ciphertext",
];

/**
 * Errors an operator fixes (a missing directory, a refused permission, a Key Vault answer) log
 * their message and code without a JavaScript stack: the stack says nothing they can act on.
 * Bugs (INTERNAL, UNKNOWN, or an error with no code) keep it, for the report.
 */
function serializeError(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as Record<string, unknown>;
  const { code, name } = (err ?? {}) as { code?: unknown; name?: unknown };
  const coded = typeof code === "string" && code !== "INTERNAL" && code !== "UNKNOWN";
  if (coded || (typeof name === "string" && operatorErrors.has(name))) delete out["stack"];
  return out;
}

/** The plugin's errors about its configuration and surroundings, each with its fix. */
const operatorErrors: ReadonlySet<string> = new Set([
  "AzureJsonError",
  "ClientCertificateError",
  "CloudError",
  "HttpAddressError",
  "IdentitySetupError",
  "ListenAddressError",
  "TokenEndpointError",
  "UsageError",
]);

/**
 * Each line names one `component`: a child given its own replaces its parent's instead of adding
 * a second key (pino would write both).
 */
class ComponentLogger implements Logger {
  readonly #line: PinoLogger;

  constructor(
    private readonly base: PinoLogger,
    private readonly component: string,
  ) {
    this.#line = base.child({ component });
  }

  trace(obj: object, msg?: string): void {
    this.#line.trace(obj, msg);
  }
  debug(obj: object, msg?: string): void {
    this.#line.debug(obj, msg);
  }
  info(obj: object, msg?: string): void {
    this.#line.info(obj, msg);
  }
  warn(obj: object, msg?: string): void {
    this.#line.warn(obj, msg);
  }
  error(obj: object, msg?: string): void {
    this.#line.error(obj, msg);
  }
  isLevelEnabled(level: LogLevel): boolean {
    return this.#line.isLevelEnabled(level);
  }

  child(bindings: Record<string, unknown>): Logger {
    const { component, ...rest } = bindings;
    const base = Object.keys(rest).length === 0 ? this.base : this.base.child(rest);
    return new ComponentLogger(base, typeof component === "string" ? component : this.component);
  }
}

export function createLogger(options: LoggerOptions): Logger {
  const root: PinoLogger = pino(
    {
      level: levelFromVerbosity(options.verbosity),
      base: {},
      redact: { paths: redactPaths, censor: "[redacted]" },
      serializers: { err: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
  return new ComponentLogger(root, "keyvault-kms");
}

/** For tests and library use: drops everything. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
