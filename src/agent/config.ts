/**
 * The agent's configuration: upstream's option names, each settable by command-line flag, by a
 * file in --config-dir (file name = option name, content = value, as a Kubernetes ConfigMap is
 * mounted), or by environment (CILIUM_<OPTION> with dashes as underscores, as upstream). Flags win
 * over config-dir, config-dir over environment, environment over defaults. Pure: the I/O that
 * gathers the sources is in config-sources.ts.
 *
 * Nothing is global: several agents on one machine differ in node name, state dir, bpf root and
 * socket.
 */
import { isAbsolute, normalize } from "node:path";
import { formatCidr, parseCidr } from "../net/ipv4.ts";
import { MAX_POOL_PREFIX } from "./ipam/index.ts";

export interface AgentConfig {
  nodeName: string;
  /** Where the agent persists IPAM and endpoints. */
  stateDir: string;
  /** bpffs mount under which the datapath pins maps and links. */
  bpfRoot: string;
  socketPath: string;
  /** Group owning the API socket, by name, and its id. */
  socketGroup: string;
  socketGid: number;
  /** This node's pod CIDR, canonical ("10.200.0.0/24"). */
  ipv4Range: string;
  mtu: number;
  enableIpv4Masquerade: boolean;
  /** Native devices for masquerading; empty: the datapath uses the default route's device. */
  devices: string[];
  /** --enable-policy: when endpoints are in default deny (src/policy/resolve.ts). */
  enablePolicy: EnforcementMode;
  /** --allow-localhost: whether the local host may always reach local endpoints. */
  allowLocalhost: AllowLocalhost;
  /** --bpf-policy-map-max: entries the policy map may hold, all endpoints together (undefined: the whole map). */
  policyMapMax?: number;
  /** --conntrack-gc-interval in ms; undefined: dynamic. */
  conntrackGcInterval?: number;
  /** --conntrack-gc-max-interval in ms; undefined: the default ceiling (12 h). */
  conntrackGcMaxInterval?: number;
  configDir?: string;
}

export type EnforcementMode = "default" | "always" | "never";
export type AllowLocalhost = "auto" | "always" | "policy";

/** Whether host -> endpoint traffic bypasses ingress policy. "auto" is "policy" outside Kubernetes (upstream). */
export function allowsLocalhost(mode: AllowLocalhost): boolean {
  return mode === "always";
}

/** Where a value can come from, strongest first. */
export interface ConfigSources {
  /** Only the flags given on the command line (no defaults filled in). */
  flags: Record<string, string | boolean | undefined>;
  /** Option name -> file content, from --config-dir. */
  configDir?: { path: string; values: Record<string, string> };
  env: Record<string, string | undefined>;
}

/** Facts about the machine the defaults and the socket group depend on. */
export interface HostFacts {
  hostname: string;
  /** Id of a group by name, undefined when there is no such group. */
  groupId(name: string): number | undefined;
  /** Name of a group by id, undefined when unnamed. */
  groupName(gid: number): string | undefined;
  /** The agent's own primary group id. */
  primaryGid: number;
}

/** All problems with the configuration, one per line. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

type OptionValue = string | number | boolean | string[];
type Parsed<T> = { value: T } | { problem: string };

interface OptionSpec<T extends OptionValue> {
  description: string;
  type: "string" | "boolean";
  /** Environment variables read besides CILIUM_<OPTION>, strongest first. */
  env?: string[];
  parse(text: string | boolean, host: HostFacts): Parsed<T>;
  /** The default; an option without one is required, and `required` says what to give. */
  fallback?(host: HostFacts): T;
  required?: string;
}

const DEFAULT_SOCKET_GROUP = "cilium";

/** Every option, by its upstream flag name. */
export const AGENT_OPTIONS = {
  "node-name": option<string>({
    description: "Name of this node (default: the hostname; env CILIUM_NODE_NAME or K8S_NODE_NAME)",
    env: ["K8S_NODE_NAME"],
    parse: (text) => {
      const name = String(text).trim();
      if (!/^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/.test(name)) {
        return { problem: "must be 1-253 letters, digits, '.', '_' or '-', starting and ending with a letter or digit" };
      }
      return { value: name };
    },
    fallback: (host) => host.hostname,
  }),
  "state-dir": option<string>({
    description: "Directory for the agent's persistent state (IPAM, endpoints)",
    parse: absolutePath,
    fallback: () => "/var/run/cilium",
  }),
  "bpf-root": option<string>({
    description: "Path to the BPF filesystem the datapath pins maps and links under",
    parse: absolutePath,
    fallback: () => "/sys/fs/bpf",
  }),
  "socket-path": option<string>({
    description: "Path of the agent's API unix socket",
    parse: absolutePath,
    fallback: () => "/var/run/cilium/cilium.sock",
  }),
  "socket-group": option<string>({
    description: `Group owning the API socket (default "${DEFAULT_SOCKET_GROUP}" when that group exists, else the agent's own group)`,
    parse: (text, host) => {
      const name = String(text).trim();
      if (/^\d+$/.test(name)) return { value: name };
      return host.groupId(name) === undefined ? { problem: "no such group" } : { value: name };
    },
    fallback: (host) =>
      host.groupId(DEFAULT_SOCKET_GROUP) !== undefined ? DEFAULT_SOCKET_GROUP : (host.groupName(host.primaryGid) ?? String(host.primaryGid)),
  }),
  "ipv4-range": option<string>({
    description: "This node's IPv4 pod CIDR, e.g. 10.200.0.0/24 (required)",
    required: "this node's pod CIDR, e.g. --ipv4-range 10.200.0.0/24",
    parse: (text) => {
      const value = String(text).trim();
      let cidr;
      try {
        cidr = parseCidr(value);
      } catch (error) {
        // The message starts with the quoted value, which the option's problem line shows already.
        return { problem: (error as Error).message.replace(`${JSON.stringify(value)}`, "").replace(/^:? /, "") };
      }
      if (cidr.prefixLength > MAX_POOL_PREFIX) {
        return { problem: `prefix length must be at most ${MAX_POOL_PREFIX}: the pool needs a router and a pod address besides the network and broadcast addresses` };
      }
      return { value: formatCidr(cidr) };
    },
  }),
  mtu: option<number>({
    description: "MTU of pod interfaces",
    parse: (text) => {
      const value = String(text).trim();
      const mtu = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
      return mtu >= 68 && mtu <= 65535 ? { value: mtu } : { problem: "must be an integer from 68 to 65535" };
    },
    fallback: () => 1500,
  }),
  "enable-ipv4-masquerade": option<boolean>({
    description: "Masquerade IPv4 traffic leaving the node from pods",
    type: "boolean",
    parse: parseBoolean,
    fallback: () => true,
  }),
  devices: option<string[]>({
    description: "Native devices for masquerading, comma-separated (default: the device of the default route)",
    parse: (text) => {
      const names = String(text).split(/[\s,]+/).filter(Boolean);
      const bad = names.find((name) => !isInterfaceName(name));
      return bad === undefined ? { value: names } : { problem: `"${bad}" is not a valid interface name` };
    },
    fallback: () => [],
  }),
  "enable-policy": option<EnforcementMode>({
    description: "Policy enforcement: default (endpoints selected by a rule with default deny), always (every endpoint), never",
    parse: (text) => {
      const value = String(text).trim();
      return value === "default" || value === "always" || value === "never" ? { value } : { problem: "must be default, always or never" };
    },
    fallback: () => "default",
  }),
  "allow-localhost": option<AllowLocalhost>({
    description: "Local host to endpoint traffic: always (allowed whatever the policy), policy (subject to policy, as the host entity), auto (policy outside Kubernetes)",
    parse: (text) => {
      const value = String(text).trim();
      return value === "auto" || value === "always" || value === "policy" ? { value } : { problem: "must be auto, always or policy" };
    },
    fallback: () => "auto",
  }),
  "bpf-policy-map-max": option<number>({
    description: "Entries the policy map may hold for all endpoints together (default 0: the whole map); a policy that does not fit fails closed",
    parse: (text) => {
      const value = String(text).trim();
      return /^\d{1,9}$/.test(value) ? { value: Number(value) } : { problem: "must be a non-negative integer" };
    },
    fallback: () => 0,
  }),
  "conntrack-gc-interval": option<number>({
    description: "Interval of conntrack and masquerade garbage collection, such as 30s or 5m (default 0s: dynamic)",
    parse: parseDurationMs,
    fallback: () => 0,
  }),
  "conntrack-gc-max-interval": option<number>({
    description: "Longest interval of the dynamic conntrack garbage collection (default 0s: 12h)",
    parse: parseDurationMs,
    fallback: () => 0,
  }),
} as const;

export type AgentOptionName = keyof typeof AGENT_OPTIONS;

/** The flag naming the config dir; read from flags and environment only. */
export const CONFIG_DIR_OPTION = "config-dir";

export function resolveAgentConfig(sources: ConfigSources, host: HostFacts): AgentConfig {
  const problems: string[] = [];
  const values: Partial<Record<AgentOptionName, OptionValue>> = {};
  for (const name of Object.keys(AGENT_OPTIONS) as AgentOptionName[]) {
    const spec: OptionSpec<OptionValue> = AGENT_OPTIONS[name];
    const given = lookup(name, spec, sources);
    if (given === undefined) {
      if (spec.fallback) values[name] = spec.fallback(host);
      else problems.push(`--${name} is required: ${spec.required ?? spec.description}`);
      continue;
    }
    const parsed = spec.parse(given.value, host);
    if ("problem" in parsed) problems.push(`--${name} ${JSON.stringify(given.value)}${given.from}: ${parsed.problem}`);
    else values[name] = parsed.value;
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const socketGroup = values["socket-group"] as string;
  const config: AgentConfig = {
    nodeName: values["node-name"] as string,
    stateDir: values["state-dir"] as string,
    bpfRoot: values["bpf-root"] as string,
    socketPath: values["socket-path"] as string,
    socketGroup,
    socketGid: /^\d+$/.test(socketGroup) ? Number(socketGroup) : host.groupId(socketGroup)!,
    ipv4Range: values["ipv4-range"] as string,
    mtu: values.mtu as number,
    enableIpv4Masquerade: values["enable-ipv4-masquerade"] as boolean,
    devices: values.devices as string[],
    enablePolicy: values["enable-policy"] as EnforcementMode,
    allowLocalhost: values["allow-localhost"] as AllowLocalhost,
  };
  if ((values["bpf-policy-map-max"] as number) > 0) config.policyMapMax = values["bpf-policy-map-max"] as number;
  if ((values["conntrack-gc-interval"] as number) > 0) config.conntrackGcInterval = values["conntrack-gc-interval"] as number;
  if ((values["conntrack-gc-max-interval"] as number) > 0) config.conntrackGcMaxInterval = values["conntrack-gc-max-interval"] as number;
  if (sources.configDir) config.configDir = sources.configDir.path;
  return config;
}

/** The effective configuration by option name, as GET /v1/config answers it. */
export function configByOption(config: AgentConfig): Record<string, OptionValue> {
  const options: Record<string, OptionValue> = {
    "node-name": config.nodeName,
    "state-dir": config.stateDir,
    "bpf-root": config.bpfRoot,
    "socket-path": config.socketPath,
    "socket-group": config.socketGroup,
    "ipv4-range": config.ipv4Range,
    mtu: config.mtu,
    "enable-ipv4-masquerade": config.enableIpv4Masquerade,
    devices: config.devices,
    "enable-policy": config.enablePolicy,
    "allow-localhost": config.allowLocalhost,
    "bpf-policy-map-max": config.policyMapMax ?? 0,
    "conntrack-gc-interval": formatDurationMs(config.conntrackGcInterval ?? 0),
    "conntrack-gc-max-interval": formatDurationMs(config.conntrackGcMaxInterval ?? 0),
  };
  if (config.configDir !== undefined) options[CONFIG_DIR_OPTION] = config.configDir;
  return options;
}

/** Names in the config dir that are not options (a shared ConfigMap holds many). */
export function unknownConfigDirOptions(values: Record<string, string>): string[] {
  return Object.keys(values).filter((name) => !(name in AGENT_OPTIONS) && name !== CONFIG_DIR_OPTION).sort();
}

/** CILIUM_<OPTION>: upstream's environment form of an option. */
export function envName(option: string): string {
  return `CILIUM_${option.toUpperCase().replaceAll("-", "_")}`;
}

function lookup(name: string, spec: OptionSpec<OptionValue>, sources: ConfigSources): { value: string | boolean; from: string } | undefined {
  const flag = sources.flags[name];
  if (flag !== undefined) return { value: flag, from: "" };
  const file = sources.configDir?.values[name];
  if (file !== undefined) return { value: file.trim(), from: ` (from ${sources.configDir!.path}/${name})` };
  for (const variable of [envName(name), ...(spec.env ?? [])]) {
    const value = sources.env[variable];
    if (value !== undefined && value !== "") return { value, from: ` (from ${variable})` };
  }
  return undefined;
}

function option<T extends OptionValue>(spec: Omit<OptionSpec<T>, "type"> & { type?: "string" | "boolean" }): OptionSpec<T> {
  return { type: "string", ...spec };
}

function absolutePath(text: string | boolean): Parsed<string> {
  const path = String(text).trim();
  return isAbsolute(path) ? { value: normalize(path) } : { problem: "must be an absolute path" };
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration forms ("30s", "1m30s", "500ms", "0"), as upstream's duration flags take them; whole ms. */
function parseDurationMs(text: string | boolean): Parsed<number> {
  const value = String(text).trim();
  if (value === "0") return { value: 0 };
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  if (!new RegExp(`^(?:${part.source})+$`).test(value)) return { problem: "must be a duration such as 30s, 5m or 1h30m" };
  let ms = 0;
  for (const match of value.matchAll(part)) ms += Number(match[1]) * DURATION_UNITS_MS[match[2]!]!;
  return { value: Math.round(ms) };
}

/** "0s", "30s", "3600s", "1500ms". */
function formatDurationMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Go's strconv.ParseBool forms, which upstream's ConfigMaps use. */
function parseBoolean(text: string | boolean): Parsed<boolean> {
  if (typeof text === "boolean") return { value: text };
  const value = text.trim();
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return { value: true };
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return { value: false };
  return { problem: 'must be "true" or "false"' };
}

/** Linux interface names: 1-15 bytes, not "." or "..", no "/", ":" or whitespace. */
export function isInterfaceName(name: string): boolean {
  return name.length >= 1 && Buffer.byteLength(name) <= 15 && name !== "." && name !== ".." && !/[/:\s]/.test(name);
}
