import { setTimeout as sleep } from "node:timers/promises";
import { metricsReuseMs } from "../../src/http/metrics-server.js";

/**
 * GET /metrics as Prometheus does, after the reuse window of the last rendering has passed, so
 * the answer reflects everything the test did before it (scrapes within metricsReuseMs share one).
 */
export async function scrape(url: string | undefined): Promise<Response> {
  if (url === undefined) throw new Error("the plugin serves no /metrics");
  await sleep(metricsReuseMs);
  return fetch(url);
}

export async function scrapeText(url: string | undefined): Promise<string> {
  return (await scrape(url)).text();
}
