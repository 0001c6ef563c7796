/**
 * Datapath timestamps are CLOCK_MONOTONIC (bpf_ktime_get_ns); flows carry wall-clock time.
 * The offset between the two is measured once: it only moves when the wall clock is stepped,
 * and a flow then being a few ms off is fine (upstream converts the same way).
 */
import { timestampFromNanos, type Timestamp } from "../flow/types.ts";

export type KtimeToWall = (ktime: bigint) => Timestamp;

const EXACT_AS_DOUBLE = 2n ** 53n;

/**
 * `monotonicNow` must read CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads (the agent passes
 * src/datapath/clock.ts; Bun's process.hrtime counts from process start).
 */
export function monotonicToWall(monotonicNow: () => bigint): KtimeToWall {
  const offset = BigInt(Date.now()) * 1_000_000n - monotonicNow();
  const offsetSeconds = Number(offset / 1_000_000_000n);
  const offsetNanos = Number(offset % 1_000_000_000n);
  return (ktime) => {
    // Plain numbers while ktime is exact as a double (the first 104 days of uptime): BigInt
    // division costs more than the rest of building a flow's time.
    if (ktime >= EXACT_AS_DOUBLE || offset < 0n) return timestampFromNanos(ktime + offset);
    const k = Number(ktime);
    const seconds = Math.floor(k / 1e9);
    const nanos = k - seconds * 1e9 + offsetNanos;
    return nanos >= 1e9 ? { seconds: seconds + offsetSeconds + 1, nanos: nanos - 1e9 } : { seconds: seconds + offsetSeconds, nanos };
  };
}
