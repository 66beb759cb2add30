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
  /** The Go plugin's `-v`. */
  readonly verbosity: number;
  /** File descriptor to write JSON lines to: 1 (stdout) by default, 2 where stdout is a contract. */
  readonly fd?: number;
  /** Tests: a stream to write to instead of `fd` (e.g. to search the output for secrets). */
  readonly destination?: NodeJS.WritableStream;
}

/**
 * The Go plugin's `-v` (mlog: 0 warning/error, 2 info, 4 debug, 6 trace). Debug and trace match.
 * Our info level holds only start-up, key and shutdown events, the class the Go plugin logs with
 * mlog.Always at every level, so info shows from -v=0; nothing per request is logged at info.
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

export function createLogger(options: LoggerOptions): Logger {
  const root: PinoLogger = pino(
    {
      level: levelFromVerbosity(options.verbosity),
      base: { component: "keyvault-kms" },
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: options.fd ?? 1, sync: true }),
  );
  return root;
}

/** For tests and library use: drops everything. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
