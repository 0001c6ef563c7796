/**
 * Logging options, parsed by the entry point before any mode loads. Kept apart from the logger
 * itself: importing consola touches process.stdout, which costs a compiled binary ~20 ms of
 * start-up that the CNI plugin and CLI modes must not pay when they log nothing.
 */
export type LogFormat = "text" | "json";

export interface LogOptions {
  format?: LogFormat;
  debug?: boolean;
}

let current: LogOptions = {};

export function configureLogging(options: LogOptions): void {
  current = { ...options };
}

export function loggingOptions(): Readonly<LogOptions> {
  return current;
}

/** Reads `--log-format` and `--debug`/`-D` from raw argv, wherever they appear. */
export function logOptionsFromArgv(argv: readonly string[]): LogOptions {
  const options: LogOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") break;
    if (arg === "--debug" || arg === "-D") options.debug = true;
    else if (arg === "--log-format") options.format = parseFormat(argv[i + 1]);
    else if (arg.startsWith("--log-format=")) options.format = parseFormat(arg.slice("--log-format=".length));
  }
  return options;
}

function parseFormat(value: string | undefined): LogFormat {
  if (value === "json" || value === "text") return value;
  throw new Error(`--log-format must be "text" or "json", got ${JSON.stringify(value ?? "")}`);
}
