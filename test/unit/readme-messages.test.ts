/**
 * README's "When it does not start" table against the code: each message it quotes is one the
 * code prints (its literal pieces, around the `…` that stand for names and values), and
 * docs/troubleshooting.md lists it too.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const troubleshooting = readFileSync(join(root, "docs/troubleshooting.md"), "utf8");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "gen" ? [] : sources(path);
    return path.endsWith(".ts") ? [readFileSync(path, "utf8")] : [];
  });
}
const code = sources(join(root, "src")).join("\n");

const section = readme.split(/^## /m).find((s) => s.startsWith("When it does not start")) ?? "";
const messages = section
  .split("\n")
  .filter((line) => line.startsWith("| `"))
  .map((line) => /^\| `([^`]+)`/.exec(line)?.[1] ?? "");

/** The literal pieces of a quoted message, at least 6 characters long. */
const pieces = (message: string): string[] =>
  message
    .split("…")
    .map((p) => p.trim())
    .filter((p) => p.length >= 6);

it("quotes at least the common first-start messages", () => {
  expect(messages.length).toBeGreaterThanOrEqual(8);
});

it.each(messages.map((m) => [m]))(
  "%s is printed by the code and listed in troubleshooting",
  (m) => {
    for (const piece of pieces(m)) {
      // The code builds it from a template: names and values come between the pieces.
      const inCode = piece.split(/--[a-z-]+=[A-Z-]+/).every((p) => code.includes(p.trim()));
      expect({ piece, inCode }).toEqual({ piece, inCode: true });
    }
    const first = pieces(m)[0] ?? m;
    expect(troubleshooting).toContain(first.split("=")[0]);
  },
);
