import { setTimeout as sleep } from "node:timers/promises";
import { OccurrenceLog } from "../../../src/net/index.js";

describe("OccurrenceLog", () => {
  it("logs the first occurrence at once, then one line per interval with the count", async () => {
    const lines: { fields: object; message: string }[] = [];
    const log = new OccurrenceLog(
      { warn: (fields, message) => lines.push({ fields, message }) },
      "refused",
      50,
    );
    for (let i = 0; i < 1000; i++) log.note({ code: "EMFILE" });
    expect(lines).toEqual([{ fields: { code: "EMFILE", count: 1, total: 1 }, message: "refused" }]);
    await sleep(80);
    expect(lines[1]).toEqual({
      fields: { count: 999, total: 1000 },
      message: "refused (999 more)",
    });
    await sleep(80);
    expect(lines).toHaveLength(2); // a quiet interval writes nothing
    log.note();
    expect(lines[2]).toEqual({ fields: { count: 1, total: 1001 }, message: "refused" });
    log.close();
  });
});
