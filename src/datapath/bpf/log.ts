/**
 * libbpf's log, routed into TypeScript. libbpf reports everything worth knowing about a failure
 * (the verifier log, which map could not be reused, which relocation failed) only through its
 * print callback, so we capture the messages of the operation in progress and attach them to the
 * BpfError it throws. A logger hook decides what else is shown; debug chatter is not by default.
 */
import { JSCallback, toArrayBuffer, type Pointer } from "bun:ffi";
import { libc } from "../libc.ts";

export type BpfLogLevel = "warn" | "info" | "debug";
export type BpfLogger = (level: BpfLogLevel, message: string) => void;

/** libbpf's enum libbpf_print_level, in order. */
const levels: readonly BpfLogLevel[] = ["warn", "info", "debug"];

const defaultLogger: BpfLogger = (level, message) => {
  if (level === "warn") process.stderr.write(`${message}\n`);
};

let logger: BpfLogger = defaultLogger;

/** Replaces where libbpf's messages go (null restores the default: warnings to stderr). */
export function setBpfLogger(next: BpfLogger | null): void {
  logger = next ?? defaultLogger;
}

export interface LogLine {
  level: BpfLogLevel;
  text: string;
}

/** A verifier log of a large program runs to thousands of lines; an error needs its tail. */
const maxCapturedLines = 2000;

let capture: LogLine[] | null = null;

/**
 * Collects libbpf's messages while `body` runs and hands them to the logger afterwards. When
 * `failed(result)` says the call failed, they go at debug level: the BpfError built from the
 * returned lines carries them, and a failure the caller expects (EEXIST on an existing qdisc)
 * is no reason to warn.
 */
export function captureLog<T>(body: () => T, failed: (result: T) => boolean): { result: T; lines: LogLine[] } {
  const outer = capture;
  const lines: LogLine[] = [];
  capture = lines;
  let quiet = false;
  try {
    const result = body();
    quiet = failed(result);
    return { result, lines };
  } finally {
    capture = outer;
    if (lines.length > maxCapturedLines) lines.splice(0, lines.length - maxCapturedLines);
    for (const line of lines) logger(quiet ? "debug" : line.level, line.text);
  }
}

function record(level: BpfLogLevel, message: string): void {
  const text = message.replace(/\n+$/, "");
  if (!capture) {
    logger(level, text);
    return;
  }
  for (const line of text.split("\n")) capture.push({ level, text: line });
  // Trimmed in bulk: a verifier log arrives as one message of up to millions of lines.
  if (capture.length > 2 * maxCapturedLines) capture.splice(0, capture.length - maxCapturedLines);
}

/**
 * x86-64 SysV: va_list is one 24-byte __va_list_tag passed by pointer, and vsnprintf consumes it.
 * Formatting from copies lets us retry with a larger buffer (va_copy is a plain copy there).
 */
const vaListSize = 24;
let formatBuffer = new Uint8Array(1024);

function format(fmt: Pointer, args: Pointer): string {
  const original = new Uint8Array(toArrayBuffer(args, 0, vaListSize)).slice();
  for (;;) {
    const length = libc.vsnprintf(formatBuffer, formatBuffer.length, fmt, original.slice());
    if (length < 0) return "(unformattable libbpf message)";
    if (length < formatBuffer.length) return new TextDecoder().decode(formatBuffer.subarray(0, length));
    formatBuffer = new Uint8Array(length + 1);
  }
}

let callback: JSCallback | null = null;

/** The libbpf_print_fn_t to install with libbpf_set_print; created once, lives as long as the process. */
export function printCallback(): Pointer {
  if (process.arch !== "x64") throw new Error(`libbpf log formatting supports x86-64 only, not ${process.arch}`);
  callback ??= new JSCallback(
    (level: number, fmt: Pointer, args: Pointer): number => {
      // An exception must not unwind through libbpf's C frames.
      try {
        record(levels[level] ?? "debug", format(fmt, args));
      } catch {
        // Losing one log line is better than crashing in the middle of a libbpf call.
      }
      return 0;
    },
    { args: ["i32", "ptr", "ptr"], returns: "i32" },
  );
  if (callback.ptr === null) throw new Error("cannot create the libbpf print callback");
  return callback.ptr;
}
