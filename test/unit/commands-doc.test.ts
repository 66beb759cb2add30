/** docs/commands.md against the code: every flag of client, dev and emulator with its default. */
import { readFileSync } from "node:fs";
import { clientFlags } from "../../src/commands/client.js";
import { devFlags } from "../../src/commands/dev.js";
import { emulatorFlags } from "../../src/commands/emulator.js";
import type { FlagSpec } from "../../src/config/index.js";

const doc = readFileSync(new URL("../../docs/commands.md", import.meta.url), "utf8");

/** The rows of the flag table under `## <command>`. */
function rowsOf(command: string): string[] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(`${command}\n`)) ?? "";
  return section.split("\n").filter((line) => line.startsWith("| `--"));
}

describe.each([
  ["client", clientFlags],
  ["dev", devFlags],
  ["emulator", emulatorFlags],
] as [string, readonly FlagSpec[]][])("docs/commands.md, %s", (command, flags) => {
  it("documents each flag with its default, and no other", () => {
    const rows = rowsOf(command);
    expect(rows.map((r) => /^\| `--([a-z0-9-]+)`/.exec(r)?.[1])).toEqual(flags.map((f) => f.name));
    for (const flag of flags) {
      const cells = (rows.find((r) => r.startsWith(`| \`--${flag.name}\` `)) ?? "")
        .split("|")
        .map((c) => c.trim());
      expect(cells[2]).toBe(flag.default === "" ? "(empty)" : `\`${flag.default}\``);
    }
  });
});
