/**
 * --time-format: the names the hubble CLI accepts (case-insensitive) and the text Go's layouts
 * produce for them. Times are printed in UTC, as upstream does (a protobuf Timestamp converts to
 * a UTC time).
 */
import type { Timestamp } from "../flow/types.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

const p2 = (n: number) => String(n).padStart(2, "0");

/** Go's ".999…" fraction: `digits` digits, trailing zeros (and a bare dot) dropped. */
function trimmedFraction(nanos: number, digits: number): string {
  const frac = String(nanos).padStart(9, "0").slice(0, digits).replace(/0+$/, "");
  return frac === "" ? "" : `.${frac}`;
}

type Formatter = (d: Date, nanos: number) => string;

const date = (d: Date) => `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`;
const clock = (d: Date) => `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;

const FORMATS: Record<string, Formatter> = {
  stampmilli: (d, ns) =>
    `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${clock(d)}.${String(Math.floor(ns / 1e6)).padStart(3, "0")}`,
  yearmonthday: (d) => date(d),
  yearmonthdayhour: (d) => `${date(d)}T${p2(d.getUTCHours())}Z`,
  yearmonthdayhourminute: (d) => `${date(d)}T${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}Z`,
  rfc3339: (d) => `${date(d)}T${clock(d)}Z`,
  rfc3339milli: (d, ns) => `${date(d)}T${clock(d)}${trimmedFraction(ns, 3)}Z`,
  rfc3339micro: (d, ns) => `${date(d)}T${clock(d)}${trimmedFraction(ns, 6)}Z`,
  rfc3339nano: (d, ns) => `${date(d)}T${clock(d)}${trimmedFraction(ns, 9)}Z`,
  rfc1123z: (d) => `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${clock(d)} +0000`,
};

export const TIME_FORMAT_NAMES = ["StampMilli", "YearMonthDay", "YearMonthDayHour", "YearMonthDayHourMinute", "RFC3339", "RFC3339Milli", "RFC3339Micro", "RFC3339Nano", "RFC1123Z"] as const;

export type TimeFormatter = (t: Timestamp | undefined) => string;

export function timeFormatter(name: string): TimeFormatter {
  const format = FORMATS[name.toLowerCase()];
  if (format === undefined) throw new Error(`unknown time format "${name}": one of ${TIME_FORMAT_NAMES.join(", ")}`);
  return (t) => (t === undefined ? "N/A" : format(new Date(t.seconds * 1000), t.nanos));
}
