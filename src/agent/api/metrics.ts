/**
 * Latency of API requests by method, path template and status: a small in-memory histogram that
 * the metrics endpoint exports as upstream's cilium_agent_api_process_time_seconds.
 */

/** Upper bounds in seconds (Prometheus' default buckets). */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export interface LatencySeries {
  method: string;
  /** The route's template ("/v1/endpoint/{id}"), never the raw path: bounded label values. */
  path: string;
  status: number;
  /** Cumulative: bucketCounts[i] requests took at most LATENCY_BUCKETS[i] seconds. */
  bucketCounts: number[];
  count: number;
  sumSeconds: number;
}

export class ApiLatencyHistogram {
  private readonly series = new Map<string, LatencySeries>();

  observe(method: string, path: string, status: number, seconds: number): void {
    const key = `${method} ${path} ${status}`;
    let series = this.series.get(key);
    if (!series) {
      series = { method, path, status, bucketCounts: LATENCY_BUCKETS.map(() => 0), count: 0, sumSeconds: 0 };
      this.series.set(key, series);
    }
    LATENCY_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) series.bucketCounts[i]!++;
    });
    series.count++;
    series.sumSeconds += seconds;
  }

  /** A copy of every series. */
  snapshot(): LatencySeries[] {
    return [...this.series.values()].map((series) => ({ ...series, bucketCounts: [...series.bucketCounts] }));
  }
}
