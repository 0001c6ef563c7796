import { constants } from "node:os";

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value as number, name]),
);

/** The symbolic name of an errno value ("EEXIST"), or "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** A failed kernel or libc call: keeps the errno so callers can branch on it. */
export class SyscallError extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(operation: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${operation}: ${code} (${describeErrno(errno)})${detail ? `: ${detail}` : ""}`);
    this.name = "SyscallError";
    this.errno = errno;
    this.code = code;
  }
}

const descriptions: Record<string, string> = {
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ESRCH: "no such process",
  EINTR: "interrupted system call",
  EIO: "input/output error",
  E2BIG: "argument list too long",
  EBADF: "bad file descriptor",
  EAGAIN: "resource temporarily unavailable",
  ENOMEM: "cannot allocate memory",
  EACCES: "permission denied",
  EFAULT: "bad address",
  EBUSY: "device or resource busy",
  EEXIST: "file exists",
  ENODEV: "no such device",
  EINVAL: "invalid argument",
  ENOSPC: "no space left on device",
  ERANGE: "numerical result out of range",
  ENOTSUP: "operation not supported",
  EOPNOTSUPP: "operation not supported",
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "cannot assign requested address",
  ENETUNREACH: "network is unreachable",
  ENOTCONN: "transport endpoint is not connected",
  ETIMEDOUT: "connection timed out",
  ECONNREFUSED: "connection refused",
  ENOTEMPTY: "directory not empty",
  ENOSYS: "function not implemented",
  ENOBUFS: "no buffer space available",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EMFILE: "too many open files",
};

/** Human text for an errno, without calling into libc (so it is safe to use in any state). */
export function describeErrno(errno: number): string {
  return descriptions[errnoName(errno)] || "unknown error";
}
