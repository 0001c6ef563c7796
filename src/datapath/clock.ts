/**
 * CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns() (datapath event timestamps). Bun's
 * process.hrtime and performance.now count from process start, so they cannot be compared with
 * kernel timestamps: the kernel's clock is read with clock_gettime(2).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

const CLOCK_MONOTONIC = 1;

const lib = dlopen("libc.so.6", { clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } });
const timespec = new BigInt64Array(2);
const timespecPointer = ptr(timespec);

/** Nanoseconds of CLOCK_MONOTONIC now. */
export function monotonicNanos(): bigint {
  if (lib.symbols.clock_gettime(CLOCK_MONOTONIC, timespecPointer) !== 0) throw new Error("clock_gettime(CLOCK_MONOTONIC) failed");
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
}
