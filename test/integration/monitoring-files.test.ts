/** deploy/monitoring parses, and every metric it queries is one the plugin really exports. */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { startPluginHarness, type PluginHarness } from "../helpers/plugin-harness.js";
import { scrapeText } from "../helpers/scrape.js";

const dir = new URL("../../deploy/monitoring/", import.meta.url);
const rulesText = readFileSync(new URL("prometheus-rules.yaml", dir), "utf8");
const dashboardText = readFileSync(new URL("grafana-dashboard.json", dir), "utf8");

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  annotations?: Record<string, string>;
}

function metricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/\b(azurekms_[a-z0-9_]+)/g)) {
    names.add(m[1]!.replace(/_(bucket|count|sum)$/, ""));
  }
  return names;
}

describe("deploy/monitoring", () => {
  let h: PluginHarness;
  let exported: Set<string>;
  beforeAll(async () => {
    h = await startPluginHarness();
    const text = await scrapeText(h.plugin.metricsUrl);
    exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  });
  afterAll(async () => {
    await h.close();
  });

  it("the PrometheusRule parses, and every rule has an alert, an expr and a summary", () => {
    const doc = parse(rulesText) as { kind: string; spec: { groups: { rules: Rule[] }[] } };
    expect(doc.kind).toBe("PrometheusRule");
    const rules = doc.spec.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(7);
    for (const rule of rules) {
      expect(rule.alert).toMatch(/^KeyvaultKms/);
      expect(rule.expr.length).toBeGreaterThan(0);
      expect(rule.annotations?.["summary"]).toBeDefined();
    }
  });

  it("the dashboard is valid JSON with a query per panel", () => {
    const dashboard = JSON.parse(dashboardText) as { panels: { targets: { expr: string }[] }[] };
    expect(dashboard.panels.length).toBeGreaterThan(5);
    for (const p of dashboard.panels) expect(p.targets.length).toBeGreaterThan(0);
  });

  it.each([
    ["the alert rules", rulesText],
    ["the dashboard", dashboardText],
  ])("every metric in %s exists in the plugin's /metrics", (_what, text) => {
    const missing = [...metricNames(text)].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
  });
});
