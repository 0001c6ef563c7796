/** The CNI_* environment a runtime passes to the plugin, validated per command. */
import { CNI_COMMANDS, CniError, CniErrorCode, isCniName, type CniCommand } from "./spec.ts";

export interface CniEnvironment {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs ("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"). */
  args: Map<string, string>;
  path: string[];
}

/** Characters a kernel interface name cannot hold: '/', ':' and whitespace (as JavaScript's \s counts it). */
const FORBIDDEN_IN_IFNAME = new Set([..."/: \t\n\v\f\r\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"]);

/** Kernel rules for interface names: 1-15 bytes, no '/', ':' or whitespace, not "." or "..". */
export function validInterfaceName(name: string): boolean {
  if (name === "" || name === "." || name === ".." || new TextEncoder().encode(name).byteLength > 15) return false;
  for (const c of name) if (FORBIDDEN_IN_IFNAME.has(c) || (c >= "\u2000" && c <= "\u200a")) return false;
  return true;
}

export function readCommand(env: Record<string, string | undefined>): CniCommand | undefined {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === "") return undefined;
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
  }
  return command as CniCommand;
}

export function readEnvironment(command: CniCommand, env: Record<string, string | undefined>): CniEnvironment {
  const needs = (name: string) => {
    const value = env[name];
    if (value === undefined || value === "") {
      throw new CniError(CniErrorCode.InvalidEnvironment, `required environment variable ${name} is not set for ${command}`);
    }
    return value;
  };
  const attachment = command === "ADD" || command === "DEL" || command === "CHECK";
  const containerId = attachment ? needs("CNI_CONTAINERID") : (env.CNI_CONTAINERID ?? "");
  if (containerId && !isCniName(containerId)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(containerId)} is not valid: it must start with a letter or digit and contain only letters, digits, '_', '.' and '-'`);
  }
  const ifname = attachment ? needs("CNI_IFNAME") : (env.CNI_IFNAME ?? "");
  if (ifname && !validInterfaceName(ifname)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_IFNAME ${JSON.stringify(ifname)} is not a valid interface name`);
  }
  const netns = command === "ADD" || command === "CHECK" ? needs("CNI_NETNS") : (env.CNI_NETNS ?? "");
  return { command, containerId, netns, ifname, args: parseCniArgs(env.CNI_ARGS ?? ""), path: (env.CNI_PATH ?? "").split(":").filter(Boolean) };
}

export function parseCniArgs(raw: string): Map<string, string> {
  const args = new Map<string, string>();
  for (const pair of raw.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_ARGS entry ${JSON.stringify(pair)} is not KEY=VALUE`);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return args;
}
