/**
 * Linux errno names by value, as node:os lists them (the generic values, shared by x86-64 and
 * arm64). A table rather than node:os itself: the CNI plugin names socket errors with it, and
 * importing node:os costs a fresh process ~0.5 ms.
 */
const errnoNames: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG",
  8: "ENOEXEC", 9: "EBADF", 10: "ECHILD", 11: "EWOULDBLOCK", 12: "ENOMEM", 13: "EACCES",
  14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR",
  21: "EISDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY",
  27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE", 30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM",
  34: "ERANGE", 35: "EDEADLK", 36: "ENAMETOOLONG", 37: "ENOLCK", 38: "ENOSYS", 39: "ENOTEMPTY",
  40: "ELOOP", 42: "ENOMSG", 43: "EIDRM", 60: "ENOSTR", 61: "ENODATA", 62: "ETIME", 63: "ENOSR",
  67: "ENOLINK", 71: "EPROTO", 72: "EMULTIHOP", 74: "EBADMSG", 75: "EOVERFLOW", 84: "EILSEQ",
  88: "ENOTSOCK", 89: "EDESTADDRREQ", 90: "EMSGSIZE", 91: "EPROTOTYPE", 92: "ENOPROTOOPT",
  93: "EPROTONOSUPPORT", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 98: "EADDRINUSE",
  99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH", 102: "ENETRESET",
  103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS", 106: "EISCONN", 107: "ENOTCONN",
  110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH", 114: "EALREADY",
  115: "EINPROGRESS", 116: "ESTALE", 122: "EDQUOT", 125: "ECANCELED",
};

/** The symbolic name of an errno value ("EEXIST"), or "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `E${errno}`;
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
