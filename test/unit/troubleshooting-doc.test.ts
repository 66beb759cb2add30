/**
 * docs/troubleshooting.md covers every error the plugin raises: the stable start (up to five
 * words) of each KmsError, UsageError and ListenAddressError message written in src/ appears in it.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      // The generated protobuf code and the test emulator raise none of the plugin's errors.
      return name === "gen" || name === "emulator" ? [] : sourceFiles(path);
    }
    return path.endsWith(".ts") ? [path] : [];
  });
}

// `new KmsError("CODE", "message"` / `new ListenAddressError("problem", …` / `new UsageError(…`
const constructorCall =
  /new (KmsError|ListenAddressError|UsageError)\(\s*(?:"[A-Za-z_-]+"\s*,\s*|[a-z][A-Za-z]*\s*,\s*)?(["`])((?:\\.|(?!\2)[^\\])*)\2/g;

/** The static start of a message: up to five words before the first interpolation. */
export function stablePrefix(literal: string): string | undefined {
  // `${what}: …` names the operation; the stable part is what follows it.
  const text = literal.replace(/^\$\{what\}[:;]?\s*/, "");
  const cut = text.indexOf("${");
  const head = (cut === -1 ? text : text.slice(0, cut)).replace(/\\(.)/g, "$1");
  const words = head.split(/\s+/).filter((w) => w !== "");
  // A half-written word (e.g. `-${flag}`) or a trailing quote is not stable.
  if (cut !== -1 && !/\s$/.test(head) && words.length > 0) words.pop();
  const prefix = words
    .slice(0, 5)
    .join(" ")
    .replace(/[\s"(:;,.]+$/, "");
  return prefix.split(" ").filter((w) => w !== "").length >= 2 ? prefix : undefined;
}

export function errorPrefixes(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sourceFiles(join(root, "src"))) {
    const source = readFileSync(file, "utf8");
    for (const m of source.matchAll(constructorCall)) {
      const prefix = stablePrefix(m[3] ?? "");
      if (prefix !== undefined && !found.has(prefix)) {
        found.set(prefix, `${file.slice(root.length)} (${m[1] ?? ""})`);
      }
    }
  }
  return found;
}

function normalise(text: string): string {
  return text.replace(/`/g, "").replace(/\s+/g, " ");
}

describe("docs/troubleshooting.md", () => {
  const doc = normalise(readFileSync(join(root, "docs/troubleshooting.md"), "utf8"));
  const prefixes = errorPrefixes();

  it("finds the messages it checks", () => {
    expect(prefixes.size).toBeGreaterThan(40);
    expect(prefixes.has("Key Vault unreachable")).toBe(true);
  });

  it("mentions the stable start of every error message in src/", () => {
    const missing = [...prefixes].filter(([prefix]) => !doc.includes(prefix));
    expect(missing.map(([prefix, where]) => `${prefix}    <- ${where}`)).toEqual([]);
  });
});
