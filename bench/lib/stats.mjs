/**
 * Latency recording: every sample kept (ms as doubles, sub-µs resolution from performance.now),
 * so p99.9 is exact rather than a bucket edge. 200k samples are 1.6 MB: cheap for a bench.
 */

export class Samples {
  #data = new Float64Array(1 << 16);
  #n = 0;

  add(ms) {
    if (this.#n === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#n++] = ms;
  }

  get count() {
    return this.#n;
  }

  /** count, mean, min, p50, p90, p99, p99.9, max (ms). */
  summary() {
    const n = this.#n;
    if (n === 0) return { count: 0 };
    const sorted = this.#data.slice(0, n).sort();
    const at = (q) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i];
    return {
      count: n,
      mean: round(sum / n),
      min: round(sorted[0]),
      p50: round(at(0.5)),
      p90: round(at(0.9)),
      p99: round(at(0.99)),
      p999: round(at(0.999)),
      max: round(sorted[n - 1]),
    };
  }
}

/** 4 significant decimals of a ms figure (0.1 µs), enough for any ratio. */
export const round = (x) => Math.round(x * 10_000) / 10_000;

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Fisher–Yates, in place. */
export function shuffle(array) {
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [array[i], array[j]] = [array[j], array[i]];
  }
  return array;
}
