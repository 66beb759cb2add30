/**
 * docs/configuration.md against the code: every serve flag with its default, and every
 * environment variable read in src/.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveFlags } from "../../../src/config/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const doc = readFileSync(join(root, "docs/configuration.md"), "utf8");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      // The test emulator and generated code are not the plugin.
      return name === "emulator" || name === "gen" ? [] : sourceFiles(path);
    }
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** `env["X"]`, `env.X`, `envValue(env, "X")`, and "AZURE_*" names held in constants. */
function environmentVariablesRead(): Set<string> {
  const names = new Set<string>();
  const patterns = [
    /\benv\[\s*"([A-Z][A-Z0-9_]*)"\s*\]/g,
    /\benv\.([A-Z][A-Z0-9_]*)\b/g,
    /\benvValue\(\s*env\s*,\s*"([A-Z][A-Z0-9_]*)"\s*\)/g,
    /\benv:\s*"([A-Z][A-Z0-9_]*)"/g,
    /"(AZURE_[A-Z0-9_]+)"/g,
  ];
  for (const file of sourceFiles(join(root, "src"))) {
    const source = readFileSync(file, "utf8");
    for (const pattern of patterns) {
      for (const m of source.matchAll(pattern)) names.add(m[1] ?? "");
    }
  }
  names.delete("");
  return names;
}

/** The table row of a flag: `| \`--name\` | default | meaning |`. */
function flagRow(name: string): string | undefined {
  return doc.split("\n").find((line) => line.startsWith(`| \`--${name}\` `));
}

describe("docs/configuration.md", () => {
  it.each(serveFlags.map((f) => [f.name, f.default]))(
    "documents --%s with its default %j",
    (name, def) => {
      const row = flagRow(name);
      expect(row).toBeDefined();
      const cells = (row ?? "").split("|").map((c) => c.trim());
      expect(cells[2]).toBe(def === "" ? "(empty)" : `\`${def}\``);
      expect((cells[3] ?? "").length).toBeGreaterThan(10);
    },
  );

  it("documents no flag the code does not have", () => {
    const known = new Set(serveFlags.map((f) => f.name));
    const documented = [...doc.matchAll(/^\| `--([A-Za-z-]+)` \|/gm)].map((m) => m[1] ?? "");
    expect(documented.filter((name) => !known.has(name))).toEqual([]);
  });

  it("finds the environment variables the plugin reads", () => {
    const read = environmentVariablesRead();
    expect(read).toContain("AZURE_AUTHORITY_HOST");
    expect(read).toContain("AZURE_ENVIRONMENT_FILEPATH");
    expect(read).toContain("AZURE_CLIENT_CERTIFICATE_PASSWORD");
  });

  it("documents every environment variable read in src/", () => {
    const missing = [...environmentVariablesRead()].filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
