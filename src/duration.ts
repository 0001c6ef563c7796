/**
 * Durations as Go's time.ParseDuration reads them ("300ms", "1h30m", "1.5s", "0"): the form
 * upstream's flags take. Pure, and light enough for the CLI paths.
 */

const UNIT_NANOS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds; undefined when `s` is not a duration. */
export function parseGoDuration(s: string): number | undefined {
  const m = /^([-+]?)(.*)$/.exec(s)!;
  const body = m[2]!;
  if (body === "0") return 0;
  if (body === "") return undefined;
  const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < body.length) {
    part.lastIndex = at;
    const p = part.exec(body);
    if (!p) return undefined;
    total += Number(p[1]) * UNIT_NANOS[p[2]!]!;
    at = part.lastIndex;
  }
  return m[1] === "-" ? -total : total;
}

/** A non-negative duration flag value in milliseconds; undefined when it is not one. */
export function parseDurationMs(text: string): number | undefined {
  const ns = parseGoDuration(text.trim());
  return ns === undefined || ns < 0 ? undefined : ns / 1e6;
}
