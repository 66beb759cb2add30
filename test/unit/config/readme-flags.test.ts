import { readFileSync } from "node:fs";
import { serveFlags } from "../../../src/config/index.js";

describe("README's flag table", () => {
  const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
  const rows = readme.split("\n").filter((line) => line.startsWith("| `-"));

  it.each(serveFlags.map((f) => [f.name, f.default] as const))(
    "documents -%s with its default %j",
    (name, def) => {
      const row = rows.find((r) => {
        const firstCell = r.split("|")[1] ?? "";
        return firstCell.includes(`\`--${name}\``) || firstCell.includes(`\`-${name}\``);
      });
      expect(row).toBeDefined();
      if (def !== "" && name !== "version" && name !== "help" && name !== "key-version") {
        expect(row).toContain(`\`${def}\``);
      }
    },
  );
});
