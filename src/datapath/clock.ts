/**
 * The datapath's clock: CLOCK_MONOTONIC nanoseconds since boot (the BPF programs read it at tick resolution). Read
 * through libc: process.hrtime under Bun counts from an origin of its own, not from boot.
 */
import { check, CLOCK_MONOTONIC, libc } from "./libc.ts";

const timespec = new BigInt64Array(2);

export function monotonicNs(): bigint {
  check("clock_gettime(CLOCK_MONOTONIC)", libc.clock_gettime(CLOCK_MONOTONIC, timespec));
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
}
