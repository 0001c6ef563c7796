/**
 * BpfError: a failed libbpf or bpf(2) call, with the errno, the operation and object it was
 * about, and what libbpf logged meanwhile (for a program load, the verifier's reasons).
 */
import type { Pointer } from "bun:ffi";
import { describeErrno, errnoName } from "../errors.ts";
import { errno as lastErrno } from "../libc.ts";
import { captureLog, type LogLine } from "./log.ts";

/** Kernel-internal ENOTSUPP, which the bpf syscall leaks for unsupported map operations. */
export const ENOTSUPP = 524;

/** libbpf's own error codes (enum libbpf_errno, from 4000). */
const libbpfErrors: Record<number, [string, string]> = {
  4000: ["LIBBPF_ERRNO__LIBELF", "something wrong in libelf"],
  4001: ["LIBBPF_ERRNO__FORMAT", "BPF object format invalid"],
  4002: ["LIBBPF_ERRNO__KVERSION", "incorrect or no 'version' section"],
  4003: ["LIBBPF_ERRNO__ENDIAN", "endian mismatch"],
  4004: ["LIBBPF_ERRNO__INTERNAL", "internal error in libbpf"],
  4005: ["LIBBPF_ERRNO__RELOC", "relocation failed"],
  4006: ["LIBBPF_ERRNO__LOAD", "kernel refused to load the program"],
  4007: ["LIBBPF_ERRNO__VERIFY", "kernel verifier blocked the program"],
  4008: ["LIBBPF_ERRNO__PROG2BIG", "program too big"],
  4009: ["LIBBPF_ERRNO__KVER", "incorrect kernel version"],
  4010: ["LIBBPF_ERRNO__PROGTYPE", "kernel does not support this program type"],
  4011: ["LIBBPF_ERRNO__WRNGPID", "wrong pid in netlink message"],
  4012: ["LIBBPF_ERRNO__INVSEQ", "invalid netlink sequence"],
  4013: ["LIBBPF_ERRNO__NLPARSE", "netlink message parse error"],
};

function describe(errno: number): [string, string] {
  if (errno === ENOTSUPP) return ["ENOTSUPP", "operation not supported by this map or program type"];
  return libbpfErrors[errno] ?? [errnoName(errno), describeErrno(errno)];
}

/** How many lines of the log go into the message; the full capture stays in `log`. */
const summaryLines = 8;

/**
 * The part of the log that explains the failure: the end of the last verifier log if there is
 * one (the verifier states its reason last, followed by the instruction count), else the last
 * warnings.
 */
function summarize(lines: readonly LogLine[]): string[] {
  const texts = lines.map((line) => line.text);
  const end = texts.findLastIndex((text) => text.includes("-- END PROG LOAD LOG --"));
  const begin = texts.findLastIndex((text, i) => i < end && text.includes("-- BEGIN PROG LOAD LOG --"));
  if (begin >= 0) {
    // libbpf names the failing program in the line before the log ("prog 'x': BPF program load failed").
    const program = texts.slice(0, begin).findLast((text) => text.includes("program load failed"));
    const tail = texts.slice(Math.max(begin + 1, end - summaryLines), end).filter((text) => text.trim());
    return program ? [program, ...tail] : tail;
  }
  return lines
    .filter((line) => line.level === "warn")
    .slice(-3)
    .map((line) => line.text);
}

export class BpfError extends Error {
  readonly errno: number;
  /** "EPERM", "ENOTSUPP", "LIBBPF_ERRNO__VERIFY", ... */
  readonly code: string;
  /** What was being done, naming the object: `load bpf object "counter"`. */
  readonly operation: string;
  /** Every line libbpf logged during the operation (bounded to the most recent). */
  readonly log: readonly string[];

  constructor(operation: string, errno: number, log: readonly LogLine[] = []) {
    const [code, description] = describe(errno);
    const summary = summarize(log);
    const detail = summary.length === 0 ? "" : summary.length === 1 ? `: ${summary[0]}` : `:\n${summary.join("\n")}`;
    super(`${operation}: ${code} (${description})${detail}`);
    this.name = "BpfError";
    this.errno = errno;
    this.code = code;
    this.operation = operation;
    this.log = log.map((line) => line.text);
  }
}

/**
 * Runs a libbpf call that returns a negative errno on failure; throws BpfError with its log,
 * unless the errno is one the caller handles (then the negative result is returned).
 */
export function check(operation: string, call: () => number, tolerated: readonly number[] = []): number {
  const { result, lines } = captureLog(call, (ret) => ret < 0);
  if (result < 0 && !tolerated.includes(-result)) throw new BpfError(operation, -result, lines);
  return result;
}

/** Runs a libbpf call that returns NULL and sets errno on failure; throws BpfError with its log. */
export function checkPointer(operation: string, call: () => Pointer | null): Pointer {
  let errno = 0;
  const { result, lines } = captureLog(
    () => {
      const pointer = call();
      if (pointer === null) errno = lastErrno();
      return pointer;
    },
    (pointer) => pointer === null,
  );
  if (result === null) throw new BpfError(operation, errno || 22 /* EINVAL: libbpf gave no reason */, lines);
  return result;
}
