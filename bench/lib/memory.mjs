/* global setInterval, clearInterval */
/**
 * The plugin's memory over a run: a labelled sample (RSS from /proc, V8 heap and cached seeds from
 * its /metrics) after warm-up and after each scenario, and the peak RSS seen while under load
 * (/proc only, every 250 ms: reading it costs the plugin nothing, unlike a /metrics scrape).
 */
import { pluginMetrics, rssMiB } from "./processes.mjs";

export function memoryTracker(plugin) {
  const samples = [];
  let peakUnderLoad = 0;
  let poller;

  return {
    samples,
    get peakUnderLoadMiB() {
      return peakUnderLoad;
    },
    /** `extra`: figures kept with it (the baseline's RSS at the same point), rounded alike. */
    async sample(label, extra = {}) {
      const rss = await rssMiB(plugin.pid);
      const m = await pluginMetrics(plugin.metricsUrl);
      const s = {
        label,
        rssMiB: round1(rss),
        heapMiB: round1(m.heapMiB),
        seedsCached: m.seedsCached,
        ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, round1(v)])),
      };
      samples.push(s);
      return s;
    },
    loadStarted() {
      poller = setInterval(() => {
        void rssMiB(plugin.pid).then((r) => {
          if (r > peakUnderLoad) peakUnderLoad = r;
        });
      }, 250);
    },
    loadStopped() {
      clearInterval(poller);
    },
    /** RSS and heap growth from the first sample (after warm-up) to the last. */
    growth() {
      const first = samples[0];
      const last = samples.at(-1);
      if (first === undefined || last === undefined) return { rssMiB: NaN, heapMiB: NaN };
      return {
        rssMiB: round1(last.rssMiB - first.rssMiB),
        heapMiB: round1(last.heapMiB - first.heapMiB),
      };
    },
  };
}

const round1 = (x) => Math.round(x * 10) / 10;
