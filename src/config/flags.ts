/**
 * A small command-line parser with Go `flag` semantics, because the Go plugin's command lines must
 * start us unchanged: `-name` and `--name` are the same flag, values come as `--name=value` or
 * `--name value`, and a boolean takes `--flag` or `--flag=true|false` (never a separate word).
 */
export type FlagKind = "string" | "bool" | "uint" | "int" | "duration";

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly help: string;
  /** Listed in --help and docs as the default; parsing itself never fills defaults in. */
  readonly default: string;
  /** Environment variable read when the flag is absent (precedence: default < env < flag). */
  readonly env?: string;
}

export class UsageError extends Error {
  override name = "UsageError";
}

export interface ParsedFlags {
  /** Raw values by flag name, in the order given; the last occurrence wins. */
  readonly values: ReadonlyMap<string, string>;
  /** Words after the flags (after `--`, or the first non-flag word). */
  readonly rest: readonly string[];
  /** The effective raw value: the flag, else its environment variable, else its default. */
  get(name: string): string;
}

export function parseFlags(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  env: NodeJS.ProcessEnv = {},
): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map<string, string>();
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i] ?? "";
    if (word === "--") {
      i++;
      break;
    }
    if (!word.startsWith("-") || word === "-") break;
    const body = word.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new UsageError(`unknown flag: --${name}`);
    let value: string;
    if (eq !== -1) {
      value = body.slice(eq + 1);
    } else if (spec.kind === "bool") {
      value = "true";
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`flag needs an argument: --${name}`);
      value = next;
      i++;
    }
    values.set(name, value);
  }
  return {
    values,
    rest: argv.slice(i),
    get(name) {
      const spec = byName.get(name);
      if (spec === undefined) throw new Error(`no flag spec named ${name}`);
      return (
        values.get(name) ?? (spec.env === undefined ? undefined : env[spec.env]) ?? spec.default
      );
    },
  };
}

/** Go's strconv.ParseBool spellings. */
export function parseBool(name: string, raw: string): boolean {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(raw)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(raw)) return false;
  throw new UsageError(`invalid boolean value "${raw}" for flag --${name}`);
}

export function parseUint(name: string, raw: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw))
    throw new UsageError(`invalid value "${raw}" for flag --${name}: not a whole number`);
  const n = Number(raw);
  if (n > max) throw new UsageError(`invalid value "${raw}" for flag --${name}: at most ${max}`);
  return n;
}

/** Go `int` flags (e.g. --proxy-port): an optional minus sign, then digits, within [min, max]. */
export function parseIntFlag(name: string, raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw))
    throw new UsageError(`invalid value "${raw}" for flag --${name}: not a whole number`);
  const n = Number(raw);
  if (n < min || n > max) {
    throw new UsageError(`invalid value "${raw}" for flag --${name}: between ${min} and ${max}`);
  }
  return n;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations such as `20s`, `1m30s`, `500ms`, `7d` (days are ours), returned in ms. */
export function parseDuration(name: string, raw: string): number {
  const units = Object.keys(durationUnits).concat("d").join("|");
  const re = new RegExp(`^(?:(\\d+(?:\\.\\d+)?)(${units}))+$`);
  if (raw === "0") return 0;
  if (!re.test(raw))
    throw new UsageError(`invalid duration "${raw}" for flag --${name} (e.g. 30s, 5m, 7d)`);
  let total = 0;
  for (const m of raw.matchAll(new RegExp(`(\\d+(?:\\.\\d+)?)(${units})`, "g"))) {
    const unit = m[2] ?? "";
    total += Number(m[1]) * (unit === "d" ? 86_400_000 : (durationUnits[unit] ?? 0));
  }
  return Math.round(total);
}

/** The Go plugin trims spaces and surrounding double quotes from names (its issue #85). */
export function sanitize(raw: string): string {
  return raw
    .trim()
    .replace(/^"+|"+$/g, "")
    .trim();
}

/** The flag list of a command's help, from the table its parser uses. */
export function flagUsage(specs: readonly FlagSpec[]): string {
  return specs
    .map((s) => {
      const def = s.default === "" ? "" : ` (default ${s.default})`;
      return `  --${s.name}${s.kind === "bool" ? "" : " value"}\n        ${s.help}${def}`;
    })
    .join("\n");
}

/**
 * Whether a command line asks for help (`-h`, `-help`, `--help`, `--help=true`), read as the
 * parser reads it: a value of a flag, or a word after `--`, is not a request for help.
 */
export function asksForHelp(argv: readonly string[], specs: readonly FlagSpec[]): boolean {
  const takesValue = new Set(specs.filter((s) => s.kind !== "bool").map((s) => s.name));
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] ?? "";
    if (word === "--") return false;
    if (!word.startsWith("-") || word === "-") continue;
    const body = word.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    if (name === "h" || name === "help") {
      if (eq === -1) return true;
      try {
        if (parseBool(name, body.slice(eq + 1))) return true;
      } catch {
        // Not a boolean: the command's own parser reports it.
      }
      continue;
    }
    if (eq === -1 && takesValue.has(name)) i++;
  }
  return false;
}
