/**
 * Datapath timestamps are CLOCK_MONOTONIC (bpf_ktime_get_ns); flows carry wall-clock time.
 * The offset between the two is measured once: it only moves when the wall clock is stepped,
 * and a flow then being a few ms off is fine (upstream converts the same way).
 */
import { timestampFromNanos, type Timestamp } from "../flow/types.ts";

export type KtimeToWall = (ktime: bigint) => Timestamp;

/**
 * `monotonicNow` must read CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads (the agent passes
 * src/datapath/clock.ts; Bun's process.hrtime counts from process start).
 */
export function monotonicToWall(monotonicNow: () => bigint): KtimeToWall {
  const offset = BigInt(Date.now()) * 1_000_000n - monotonicNow();
  return (ktime) => timestampFromNanos(ktime + offset);
}
