/**
 * Buffers whose addresses we store inside C structs. bun:ffi keeps a buffer passed directly as a
 * pointer argument alive for the call, but not one referenced only by an address inside another
 * buffer; `holding` keeps such buffers reachable until the call returns.
 */
import { ptr } from "bun:ffi";

const inFlight: unknown[] = [];

/** The address of a buffer as a u64 field value; 0 (NULL) for null or an empty buffer. */
export function address(buffer: Uint8Array | null | undefined): bigint {
  return buffer && buffer.length > 0 ? BigInt(ptr(buffer)) : 0n;
}

/** Runs `body` while `buffers` are guaranteed reachable. */
export function holding<T>(buffers: readonly unknown[], body: () => T): T {
  const depth = inFlight.length;
  inFlight.push(...buffers);
  try {
    return body();
  } finally {
    inFlight.length = depth;
  }
}
