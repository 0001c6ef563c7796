/**
 * A pflag-style command-line parser for the hubble CLI: `--name value`, `--name=value`,
 * `-x value`, `-xvalue`, boolean flags (`--follow`, `--follow=false`), and flags that take no
 * value unless given with `=`. Flags are reported in command-line order, which `--not` needs.
 */

export type FlagKind = "bool" | "value" | "optional";

export interface FlagTable {
  /** The kind of a long flag name, or undefined for an unknown flag. */
  kind(name: string): FlagKind | undefined;
  /** Short letter -> long name. */
  shorts: Readonly<Record<string, string>>;
}

export class UsageError extends Error {
  override name = "UsageError";
}

const BOOL_TEXT: Record<string, boolean> = { "1": true, t: true, T: true, true: true, TRUE: true, True: true, "0": false, f: false, F: false, false: false, FALSE: false, False: false };

export function parseBool(name: string, value: string): boolean {
  const b = BOOL_TEXT[value];
  if (b === undefined) throw new UsageError(`invalid argument "${value}" for "--${name}" flag: not a boolean`);
  return b;
}

/**
 * Walks `argv`, calling `onFlag(longName, value)` for each flag (booleans get "true"/"false",
 * optional-value flags without `=` get "true"); returns the positional arguments.
 */
export function parseFlags(argv: readonly string[], table: FlagTable, onFlag: (name: string, value: string) => void): string[] {
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string;
    let inline: string | undefined;
    let shown: string;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      shown = `--${name}`;
    } else if (arg.startsWith("-") && arg.length > 1) {
      const letter = arg[1]!;
      const long = table.shorts[letter];
      shown = `-${letter}`;
      if (long === undefined) throw new UsageError(`unknown shorthand flag: '${letter}' in ${arg}`);
      name = long;
      const rest = arg.slice(2);
      if (rest !== "") inline = rest.startsWith("=") ? rest.slice(1) : rest;
    } else {
      positionals.push(arg);
      continue;
    }
    const kind = table.kind(name);
    if (kind === undefined) throw new UsageError(`unknown flag: ${shown}`);
    if (kind === "bool") onFlag(name, String(inline === undefined ? true : parseBool(name, inline)));
    else if (kind === "optional") onFlag(name, inline ?? "true");
    else if (inline !== undefined) onFlag(name, inline);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: ${shown}`);
      onFlag(name, argv[++i]!);
    }
  }
  return positionals;
}

/** A non-negative integer flag value (uint64); bigint beyond 2^53. */
export function parseUint(name: string, value: string): bigint {
  if (!/^\d+$/.test(value) || BigInt(value) >= 2n ** 64n) throw new UsageError(`invalid argument "${value}" for "--${name}" flag: not a non-negative integer`);
  return BigInt(value);
}
