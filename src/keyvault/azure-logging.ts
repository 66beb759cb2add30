/**
 * Routes the Azure SDK's logger (@azure/logger, process-wide) through ours, so its lines are JSON
 * like every other line and never reach stderr on their own.
 */
import { createRequire } from "node:module";
import { formatWithOptions } from "node:util";
import * as esm from "@azure/logger";
import type { AzureLogLevel } from "@azure/logger";

/** The slice of our Logger this needs (src/log's Logger satisfies it). */
export interface AzureLogSink {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** The SDK level for the Go plugin's `--v`: its verbose output (every header) only from --v=6. */
export function azureLogLevelFromVerbosity(v: number): AzureLogLevel | undefined {
  if (v >= 6) return "verbose";
  if (v >= 4) return "info";
  // Below debug the SDK stays quiet (style: setLogLevel only in debug); AZURE_LOG_LEVEL still works.
  return undefined;
}

// The SDK prefixes each line with its namespace, e.g. "azure:keyvault-keys:info …".
const prefix = /^(azure(?::[\w.-]+)*):(verbose|info|warning|error) ?/;
// Safety net on top of the SDK's own header sanitizer: bearer tokens and JWTs are cut out.
const secretLike = [
  // PEM blocks: the CA bundle in every request dump (200 kB of roots), or a key if one slipped in.
  /-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g,
  /\bBearer\s+[\w.~+/=-]+/gi,
  /\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g,
  /(client_secret|client_assertion|access_token|refresh_token)(["']?\s*[:=]\s*["']?)[^"'&\s,}]+/gi,
];

export function scrubSecrets(text: string): string {
  let out = text;
  for (const pattern of secretLike) {
    out = out.replace(pattern, (match, name?: string, sep?: string) =>
      typeof name === "string" && typeof sep === "string"
        ? `${name}${sep}[redacted]`
        : match.startsWith("-----")
          ? "[pem]"
          : match.toLowerCase().startsWith("bearer")
            ? "Bearer [redacted]"
            : "[redacted-jwt]",
    );
  }
  return out;
}

/**
 * Sends every SDK log line to `sink` (SDK verbose → trace, info → debug, warning and error →
 * warn: the SDK's errors are per-try failures our own code handles and logs) and sets the SDK's
 * level from `verbosity`.
 */
export function routeAzureLogs(sink: AzureLogSink, verbosity: number): void {
  const log = (...args: unknown[]): void => {
    try {
      const line = scrubSecrets(formatWithOptions({ depth: 4, breakLength: Infinity }, ...args));
      const match = prefix.exec(line);
      const sdk = match?.[1] ?? "azure";
      const level = match?.[2] ?? "info";
      const msg = match === null ? line : line.slice(match[0].length);
      const fields = { sdk };
      if (level === "verbose") sink.trace(fields, msg);
      else if (level === "info") sink.debug(fields, msg);
      else sink.warn(fields, msg);
    } catch {
      // A logging failure must not fail an SDK call.
    }
  };
  const level = azureLogLevelFromVerbosity(verbosity);
  for (const copy of loggerCopies()) {
    copy.AzureLogger.log = log;
    if (level !== undefined) copy.setLogLevel(level);
  }
}

/**
 * @azure/logger ships ESM and CommonJS builds with separate state; an SDK package loaded through
 * `require` (as under jest, or a CommonJS bundle) logs through the CommonJS one. Set both.
 */
function loggerCopies(): (typeof esm)[] {
  const copies: (typeof esm)[] = [esm];
  try {
    const cjs = createRequire(import.meta.url)("@azure/logger") as typeof esm;
    if (cjs.AzureLogger !== esm.AzureLogger) copies.push(cjs);
  } catch {
    // No CommonJS build resolvable: the ESM one is all there is.
  }
  return copies;
}
