/**
 * The logger for every mode: human-readable on a terminal, JSON lines with `--log-format json`
 * (for log collectors), debug level with `--debug`. Logs go to stderr; stdout stays for command
 * output (the CNI result, `-o json` printers).
 */
import { createConsola, LogLevels, type ConsolaInstance, type LogObject } from "consola";
import { loggingOptions } from "./options.ts";

export { configureLogging, logOptionsFromArgv, type LogFormat, type LogOptions } from "./options.ts";

export type Logger = Pick<ConsolaInstance, "debug" | "info" | "warn" | "error">;

/** An entry's fields: time, level, msg, the extra objects' keys, subsys (upstream's field names). */
function fields(entry: LogObject): Record<string, unknown> {
  const [message, ...rest] = entry.args;
  const line: Record<string, unknown> = {
    time: entry.date.toISOString(),
    level: entry.type,
    msg: message instanceof Error ? message.message : String(message ?? ""),
  };
  for (const extra of rest) {
    if (extra instanceof Error) line.error = extra.message;
    else if (extra && typeof extra === "object") Object.assign(line, extra);
    else if (extra !== undefined) line.detail = extra;
  }
  if (entry.tag) line.subsys = entry.tag;
  return line;
}

const jsonReporter = {
  log(entry: LogObject) {
    process.stderr.write(`${JSON.stringify(fields(entry))}\n`);
  },
};

/** A value in a text line: bare when it has no space, quote or '=', else JSON-quoted. */
function textValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

/**
 * Off a terminal (a log file, a journal): "[level] [subsys] message key=value ...", the message
 * as it is. Consola's own plain lines format extra objects with util.inspect, ~0.2 ms a line.
 */
const textReporter = {
  log(entry: LogObject) {
    const { time: _time, level, msg, subsys, ...extra } = fields(entry);
    const pairs = Object.entries(extra).map(([key, value]) => ` ${key}=${textValue(value)}`);
    process.stderr.write(`[${level}]${subsys ? ` [${subsys}]` : ""} ${msg}${pairs.join("")}\n`);
  },
};

let root: { instance: ConsolaInstance; options: object } | undefined;

function rootLogger(): ConsolaInstance {
  const options = loggingOptions();
  if (root?.options === options) return root.instance;
  const level = options.debug ? LogLevels.debug : LogLevels.info;
  // Consola's fancy lines are for a person at a terminal. `fancy` is an option of consola's Node
  // entry, which Bun loads; the types resolve to its browser entry.
  const fancy: Parameters<typeof createConsola>[0] & { fancy: boolean } = { level, fancy: true, stdout: process.stderr, stderr: process.stderr };
  const reporter = options.format === "json" ? jsonReporter : process.stderr.isTTY === true ? undefined : textReporter;
  const instance = reporter ? createConsola({ level, reporters: [reporter] }) : createConsola(fancy);
  root = { instance, options };
  return instance;
}

/** A logger tagged with a subsystem (upstream's `subsys`), following the current options. */
export function logger(subsys: string): Logger {
  // One tagged instance per root logger: withTag builds a whole consola instance, too much per line.
  let cached: { root: ConsolaInstance; instance: ConsolaInstance } | undefined;
  const tagged = () => {
    const instance = rootLogger();
    if (cached?.root !== instance) cached = { root: instance, instance: instance.withTag(subsys) };
    return cached.instance;
  };
  return {
    debug: (...args: unknown[]) => tagged().debug(...(args as [unknown])),
    info: (...args: unknown[]) => tagged().info(...(args as [unknown])),
    warn: (...args: unknown[]) => tagged().warn(...(args as [unknown])),
    error: (...args: unknown[]) => tagged().error(...(args as [unknown])),
  } as Logger;
}
