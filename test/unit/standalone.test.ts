/**
 * The repository stands alone: no file points at what a reader of it does not have (a sibling
 * directory of the checkout, the project's issue tracker by number).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const self = "test/unit/standalone.test.ts";
const files = execFileSync("git", ["ls-files"], { cwd: root, encoding: "utf8" })
  .split("\n")
  .filter((f) => f !== "" && f !== self && !f.startsWith("src/gen/") && !/\.(png|ico)$/.test(f));

const outside = [/\.\.\/shared\b/, /\bshared\/(reference|architecture|style)/, /\(issue \d+\)/];

it("no file refers to anything outside the repository", () => {
  const found = files.flatMap((file) => {
    let text: string;
    try {
      text = readFileSync(join(root, file), "utf8");
    } catch {
      return []; // listed but removed in the working tree
    }
    return outside.filter((re) => re.test(text)).map((re) => `${file}: ${re.source}`);
  });
  expect(found).toEqual([]);
});
