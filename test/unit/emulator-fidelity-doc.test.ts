/** docs/emulator-fidelity.md: every row names at least one test, and every named test exists. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const doc = readFileSync(join(root, "docs", "emulator-fidelity.md"), "utf8");

function testFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const [k, v] of testFiles(path)) out.set(k, v);
    else if (entry.name.endsWith(".test.ts")) out.set(entry.name, readFileSync(path, "utf8"));
  }
  return out;
}

const files = new Map([
  ...testFiles(join(root, "test")),
  ...testFiles(join(root, "packages", "emulator", "test")),
]);
const rows = doc
  .split("\n")
  .filter((l) => l.startsWith("| ") && !l.startsWith("| behaviour") && !l.startsWith("| ---"));

describe("docs/emulator-fidelity.md", () => {
  it("has rows", () => {
    expect(rows.length).toBeGreaterThan(15);
  });

  it.each(rows.map((r) => [r.split("|")[1]?.trim() ?? "", r]))(
    "%s: names tests that exist",
    (_, row) => {
      const testCell = row.split("|").at(-2) ?? "";
      const refs = [...testCell.matchAll(/`([\w.-]+\.test\.ts)` "([^"]+)"/g)];
      expect(refs.length).toBeGreaterThan(0);
      for (const [, file, name] of refs) {
        const source = files.get(file ?? "");
        expect({ file, found: source !== undefined }).toEqual({ file, found: true });
        expect({ name, found: source?.includes(`"${name ?? ""}`) ?? false }).toEqual({
          name,
          found: true,
        });
      }
    },
  );
});
