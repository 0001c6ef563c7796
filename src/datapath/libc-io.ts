/**
 * The libc calls for plain file and socket I/O, in a dlopen of their own: the CNI plugin, a fresh
 * process per pod, needs only these, and each bound symbol costs a fresh process start-up time
 * (src/datapath/libc.ts binds the rest for the agent, on top of these).
 */
import { dlopen, FFIType, read as readPointer } from "bun:ffi";
import { SyscallError } from "./errors.ts";

const { i32, u32, i64, u64, ptr } = FFIType;

export const io = dlopen("libc.so.6", {
  __errno_location: { args: [], returns: ptr },
  socket: { args: [i32, i32, i32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i64 },
  write: { args: [i32, ptr, u64], returns: i64 },
  // A real symbol since glibc 2.33 (before, a macro over __xstat).
  stat: { args: [ptr, ptr], returns: i32 },
}).symbols;

export const EINTR = 4;
export const EAGAIN = 11;
export const ETIMEDOUT = 110;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;

/** errno of the last failed libc call on this thread; read it right after the call. */
export function errno(): number {
  const location = io.__errno_location();
  return location === null ? 0 : readPointer.i32(location, 0);
}

/** Throws a SyscallError when a libc call returned a negative value. */
export function check(operation: string, result: number | bigint, detail?: string): number {
  const value = Number(result);
  if (value < 0) throw new SyscallError(operation, errno(), detail);
  return value;
}

/** A NUL-terminated copy of a string, to pass as `const char *` (not a Buffer: its first use costs ~0.3 ms). */
export function cString(value: string): Uint8Array {
  return new TextEncoder().encode(`${value}\0`);
}

/** struct timeval for SO_RCVTIMEO/SO_SNDTIMEO. */
export function timeval(ms: number): BigInt64Array {
  return BigInt64Array.of(BigInt(Math.floor(ms / 1000)), BigInt((ms % 1000) * 1000));
}

/**
 * Reads a descriptor to its end (a pipe until the writer closes it, a socket until the peer
 * does), retrying on EINTR. EAGAIN is the receive timeout of a socket (SO_RCVTIMEO), reported as
 * ETIMEDOUT, or a non-blocking pipe with nothing in it yet, waited out.
 */
export function readToEnd(fd: number, what: string, onEagain: "timeout" | "wait"): Uint8Array {
  let buffer = new Uint8Array(16 * 1024);
  let length = 0;
  for (;;) {
    if (length === buffer.byteLength) {
      const grown = new Uint8Array(buffer.byteLength * 2);
      grown.set(buffer);
      buffer = grown;
    }
    const count = Number(io.read(fd, buffer.subarray(length), buffer.byteLength - length));
    if (count === 0) return buffer.subarray(0, length);
    if (count > 0) {
      length += count;
      continue;
    }
    const code = errno();
    if (code === EINTR) continue;
    if (code === EAGAIN && onEagain === "wait") {
      Bun.sleepSync(1);
      continue;
    }
    throw new SyscallError(`read ${what}`, code === EAGAIN ? ETIMEDOUT : code);
  }
}

/** A file's device and inode (struct stat's first two fields on x86-64 and arm64 alike). */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

/** stat(2) of a path: its identity, or the failure as a SyscallError (code ENOENT, ...). */
export function statIdentity(path: string): FileIdentity | SyscallError {
  const buffer = new BigUint64Array(32); // 256 bytes: above sizeof(struct stat) on both
  if (io.stat(cString(path), buffer) < 0) return new SyscallError(`stat ${path}`, errno());
  return { dev: buffer[0]!, ino: buffer[1]! };
}
