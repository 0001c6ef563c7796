/**
 * --since/--until values as the upstream CLI reads them: a Go duration back from now ("5m",
 * "1h30m", "1.5h") or an absolute time in one of its layouts (2006-01-02, 2006-01-02T15Z07:00,
 * 2006-01-02T15:04Z07:00, RFC 3339 with optional fraction, RFC 1123 with numeric zone).
 */
import { parseGoDuration } from "../../duration.ts";
import type { Timestamp } from "../flow/types.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** Minutes east of UTC for "Z", "+02:00" or "-0700"; undefined when malformed. */
function zoneOffset(zone: string): number | undefined {
  if (zone === "Z") return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
  if (!m) return undefined;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

function toTimestamp(y: number, mo: number, d: number, h: number, mi: number, sec: number, frac: string, offsetMin: number): Timestamp | undefined {
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return undefined;
  const ms = Date.UTC(y, mo - 1, d, h, mi, sec);
  const check = new Date(ms);
  if (check.getUTCDate() !== d || check.getUTCMonth() !== mo - 1) return undefined;
  const seconds = Math.floor(ms / 1000) - offsetMin * 60;
  return { seconds, nanos: frac === "" ? 0 : Number(frac.slice(0, 9).padEnd(9, "0")) };
}

function parseLayouts(s: string): Timestamp | undefined {
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) return toTimestamp(+m[1]!, +m[2]!, +m[3]!, 0, 0, 0, "", 0);
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m) {
    const off = zoneOffset(m[5]!);
    return off === undefined ? undefined : toTimestamp(+m[1]!, +m[2]!, +m[3]!, +m[4]!, 0, 0, "", off);
  }
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m) {
    const off = zoneOffset(m[6]!);
    return off === undefined ? undefined : toTimestamp(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, 0, "", off);
  }
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m) {
    const off = zoneOffset(m[8]!);
    return off === undefined ? undefined : toTimestamp(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!, m[7] ?? "", off);
  }
  m = /^(\w{3}), (\d{2}) (\w{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))? ([+-]\d{4})$/.exec(s);
  if (m && DAYS.includes(m[1]!) && MONTHS.includes(m[3]!)) {
    const off = zoneOffset(m[9]!);
    return off === undefined ? undefined : toTimestamp(+m[4]!, MONTHS.indexOf(m[3]!) + 1, +m[2]!, +m[5]!, +m[6]!, +m[7]!, m[8] ?? "", off);
  }
  return undefined;
}

/** The time `input` names, relative to `nowMs`; throws upstream's message when it names none. */
export function parseTimeFlag(input: string, nowMs: number): Timestamp {
  const d = parseGoDuration(input);
  if (d !== undefined) {
    const nanos = BigInt(nowMs) * 1_000_000n - BigInt(Math.round(d));
    return { seconds: Number(nanos / 1_000_000_000n), nanos: Number(nanos % 1_000_000_000n) };
  }
  const t = parseLayouts(input);
  if (t === undefined) throw new Error(`failed to convert ${input} to time`);
  return t;
}
