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
import { parseDurationMs } from "../duration.ts";
import { dirname, isAbsolute, join, normalize } from "node:path";
import { formatCidr, parseCidr } from "../net/ipv4.ts";
import { MAX_POOL_PREFIX } from "./ipam/index.ts";
import { parseListenAddress } from "../metrics/listen-address.ts";
import { parseHubbleMetricsSpec } from "../hubble/metrics/spec.ts";
import { isValidRingCapacity, MAX_RING_CAPACITY } from "../hubble/ring.ts";
import { etcdOptionsFrom, KVSTORE_TYPES, parseKvstoreOpt, type EtcdOptions } from "../kvstore/etcd/options.ts";

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
  /** This node's pod CIDR, canonical ("10.200.0.0/24"); "" until the operator allocates it (--kvstore etcd without --ipv4-range). */
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
  /** --monitor-aggregation: which trace and policy-verdict events the datapath writes. */
  monitorAggregation: MonitorAggregationLevel;
  /** --monitor-socket-path: where `cilium monitor` reads the event stream. */
  monitorSocketPath: string;
  /** --conntrack-gc-interval in ms; undefined: dynamic. */
  conntrackGcInterval?: number;
  /** --conntrack-gc-max-interval in ms; undefined: the default ceiling (12 h). */
  conntrackGcMaxInterval?: number;
  configDir?: string;
  /** --prometheus-serve-addr: where the agent serves its metrics ("host:port", ":port"); undefined: off. */
  prometheusServeAddr?: string;
  /** --hubble-metrics-server: where Hubble metrics are served; undefined: off. */
  hubbleMetricsServer?: string;
  /** --hubble-metrics: the Hubble metrics enabled, one string each ("drop:sourceContext=pod"), checked. */
  hubbleMetrics?: string[];
  /** --routing-mode: how pods reach pods on other nodes (tunnel: VXLAN; native: the node's routes). */
  routingMode: RoutingMode;
  /** --tunnel-protocol (tunnel mode). */
  tunnelProtocol: TunnelProtocol;
  /** --tunnel-port: the overlay's UDP port (tunnel mode). */
  tunnelPort: number;
  /** --auto-direct-node-routes: native mode routes other nodes' pod CIDRs via their node IPs. */
  autoDirectNodeRoutes: boolean;
  /** --ipv4-native-routing-cidr: destinations never masqueraded (native mode: all pod CIDRs). */
  ipv4NativeRoutingCidr?: string;
  /** The node's Hubble server and flow ring (src/agent/hubble). */
  hubble: HubbleConfig;
  /** --kvstore etcd: the cluster's shared state (identities, nodes, ipcache, policy) in etcd. */
  kvstore?: KvstoreConfig;
}

export interface KvstoreConfig {
  type: "etcd";
  etcd: EtcdOptions;
  /** --kvstore-lease-ttl: how long this agent's keys outlive its last heartbeat. */
  leaseTtlMs: number;
}

export interface HubbleConfig {
  /** --enable-hubble */
  enabled: boolean;
  /** --hubble-socket-path (default: hubble.sock next to --socket-path). */
  socketPath: string;
  /** --hubble-listen-address, e.g. ":4244"; empty: no TCP listener. */
  listenAddress: string;
  /** TLS for the TCP listener; undefined with --hubble-disable-tls or without a listener. */
  tls?: { certFile: string; keyFile: string; clientCaFiles: string[] };
  /** --hubble-event-buffer-capacity: flows the ring holds, 2^n-1. */
  eventBufferCapacity: number;
}

export type RoutingMode = "tunnel" | "native";
export type TunnelProtocol = "vxlan";

/** Bytes VXLAN adds around a pod's packet (outer IPv4, UDP, VXLAN, inner Ethernet). */
export const TUNNEL_OVERHEAD = 50;

/** The pods' MTU: --mtu (the underlying network's) less the tunnel overhead in tunnel mode. */
export function podMtu(config: Pick<AgentConfig, "mtu" | "routingMode">): number {
  return config.routingMode === "tunnel" ? config.mtu - TUNNEL_OVERHEAD : config.mtu;
}

export type MonitorAggregationLevel = "none" | "low" | "medium" | "maximum";
const MONITOR_AGGREGATION_LEVELS: readonly MonitorAggregationLevel[] = ["none", "low", "medium", "maximum"];
/** Upstream's file name for the monitor socket, next to the API socket by default. */
export const MONITOR_SOCKET_NAME = "monitor1_2.sock";

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
    description: "This node's IPv4 pod CIDR, e.g. 10.200.0.0/24 (required, unless --kvstore etcd: then the operator allocates it)",
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
    fallback: () => "",
  }),
  mtu: option<number>({
    description: "MTU of the underlying network; pods get it less 50 bytes of VXLAN overhead in tunnel mode",
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
  "monitor-aggregation": option<MonitorAggregationLevel>({
    description: "Which trace and policy-verdict events the datapath reports: none (every packet), low, medium (new connections and TCP flag changes), maximum",
    parse: (text) => {
      const value = String(text).trim() as MonitorAggregationLevel;
      return MONITOR_AGGREGATION_LEVELS.includes(value) ? { value } : { problem: `must be one of ${MONITOR_AGGREGATION_LEVELS.join(", ")}` };
    },
    fallback: () => "medium",
  }),
  "monitor-socket-path": option<string>({
    description: `Path of the monitor unix socket \`cilium monitor\` reads (default: ${MONITOR_SOCKET_NAME} next to --socket-path)`,
    parse: absolutePath,
    fallback: () => "",
  }),
  "prometheus-serve-addr": option<string>({
    description: 'Address to serve the agent\'s Prometheus metrics on, e.g. ":9962" (default "": off)',
    parse: optionalListenAddress,
    fallback: () => "",
  }),
  "hubble-metrics-server": option<string>({
    description: 'Address to serve Hubble metrics on, e.g. ":9965" (default "": off)',
    parse: optionalListenAddress,
    fallback: () => "",
  }),
  "hubble-metrics": option<string[]>({
    description: 'Hubble metrics to serve, separated by spaces or commas, each with options: "drop:sourceContext=namespace;destinationContext=pod flow tcp port-distribution icmp"',
    parse: (text) => {
      try {
        return { value: parseHubbleMetricsSpec(String(text)).map((spec) => spec.text) };
      } catch (error) {
        return { problem: (error as Error).message };
      }
    },
    fallback: () => [],
  }),
  "routing-mode": option<RoutingMode>({
    description: "How pods reach pods on other nodes: tunnel (VXLAN overlay, identity in the VNI) or native (the network routes pod CIDRs)",
    parse: (text) => {
      const value = String(text).trim();
      return value === "tunnel" || value === "native" ? { value } : { problem: "must be tunnel or native" };
    },
    fallback: () => "tunnel",
  }),
  "tunnel-protocol": option<TunnelProtocol>({
    description: "Encapsulation in tunnel mode: vxlan",
    parse: (text) => {
      const value = String(text).trim();
      if (value === "vxlan") return { value };
      return { problem: value === "geneve" ? "geneve is not supported; use vxlan" : "must be vxlan" };
    },
    fallback: () => "vxlan",
  }),
  "tunnel-port": option<number>({
    description: "UDP port of the overlay in tunnel mode (default 8472, as upstream's VXLAN)",
    parse: (text) => {
      const value = String(text).trim();
      const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
      return port >= 1 && port <= 65535 ? { value: port } : { problem: "must be a port number from 1 to 65535" };
    },
    fallback: () => 8472,
  }),
  "auto-direct-node-routes": option<boolean>({
    description: "Native mode: route each node's pod CIDRs via its node IP (all nodes on one L2 network)",
    type: "boolean",
    parse: parseBoolean,
    fallback: () => false,
  }),
  "ipv4-native-routing-cidr": option<string>({
    description: "CIDR of all pod addresses in native mode: never masqueraded (required there with masquerading)",
    parse: (text) => {
      try {
        return { value: formatCidr(parseCidr(String(text).trim())) };
      } catch (error) {
        return { problem: (error as Error).message };
      }
    },
    fallback: () => "",
  }),
  "enable-hubble": option<boolean>({
    description: "Run the Hubble server: flows from the datapath's events, the observer API on --hubble-socket-path",
    type: "boolean",
    parse: parseBoolean,
    fallback: () => true,
  }),
  "hubble-socket-path": option<string>({
    description: "Path of Hubble's unix socket (default: hubble.sock in the directory of --socket-path, /var/run/cilium/hubble.sock by default)",
    parse: absolutePath,
    fallback: () => "",
  }),
  "hubble-listen-address": option<string>({
    description: 'Address Hubble also serves on over TCP, e.g. ":4244" (default: none)',
    parse: (text) => {
      const value = String(text).trim();
      if (value === "") return { value };
      const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(value);
      return match && Number(match[2]) <= 65535 ? { value } : { problem: 'must be [host]:port, e.g. ":4244" or "127.0.0.1:4244"' };
    },
    fallback: () => "",
  }),
  "hubble-disable-tls": option<boolean>({
    description: "Serve Hubble's TCP listener in plaintext",
    type: "boolean",
    parse: parseBoolean,
    fallback: () => false,
  }),
  "hubble-tls-cert-file": option<string>({
    description: "PEM certificate (chain) of Hubble's TCP listener",
    parse: absolutePath,
    fallback: () => "",
  }),
  "hubble-tls-key-file": option<string>({
    description: "PEM private key of Hubble's TCP listener",
    parse: absolutePath,
    fallback: () => "",
  }),
  "hubble-tls-client-ca-files": option<string[]>({
    description: "PEM CA certificates, comma-separated: when given, Hubble's TCP clients must present a certificate they signed",
    parse: (text) => {
      const paths = String(text).split(/[\s,]+/).filter(Boolean);
      const bad = paths.find((path) => !isAbsolute(path));
      return bad === undefined ? { value: paths.map((path) => normalize(path)) } : { problem: `"${bad}" is not an absolute path` };
    },
    fallback: () => [],
  }),
  "hubble-event-buffer-capacity": option<number>({
    description: "Flows Hubble's ring holds: 2^n-1, e.g. 4095 or 65535",
    parse: (text) => {
      const value = String(text).trim();
      const capacity = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
      return isValidRingCapacity(capacity) ? { value: capacity } : { problem: `must be one less than a power of two, from 1 to ${MAX_RING_CAPACITY} (e.g. 4095, 65535)` };
    },
    fallback: () => 4095,
  }),
  kvstore: option<string>({
    description: `Key-value store for cluster state: "" (none: single node) or ${KVSTORE_TYPES.join(", ")}`,
    parse: (text) => {
      const value = String(text).trim();
      return value === "" || (KVSTORE_TYPES as readonly string[]).includes(value) ? { value } : { problem: `unknown kvstore; supported: ${KVSTORE_TYPES.join(", ")}` };
    },
    fallback: () => "",
  }),
  "kvstore-opt": option<string>({
    description: "Key-value store options: etcd.address=URL[,URL...] or etcd.config=FILE (upstream's etcd config YAML)",
    parse: (text) => {
      const parsed = parseKvstoreOpt(String(text));
      return "problem" in parsed ? parsed : { value: String(text).trim() };
    },
    fallback: () => "",
  }),
  "kvstore-lease-ttl": option<number>({
    description: "Lifetime of this agent's kvstore lease: its node, endpoints and identity claims vanish this long after its last heartbeat (e.g. 15s, 1m)",
    parse: (text) => {
      const ms = parseDurationMs(String(text));
      return ms !== undefined && ms >= 2000 && ms <= 86_400_000 ? { value: ms } : { problem: "must be a duration from 2s to 24h, e.g. 15s" };
    },
    fallback: () => 15_000,
  }),
  "conntrack-gc-interval": option<number>({
    description: "Interval of conntrack and masquerade garbage collection, such as 30s or 5m (default 0s: dynamic)",
    parse: durationOption,
    fallback: () => 0,
  }),
  "conntrack-gc-max-interval": option<number>({
    description: "Longest interval of the dynamic conntrack garbage collection (default 0s: 12h)",
    parse: durationOption,
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
  if ((values["hubble-metrics"] as string[] | undefined)?.length && !values["hubble-metrics-server"]) {
    problems.push("--hubble-metrics needs --hubble-metrics-server, the address to serve them on");
  }
  const hubble = hubbleConfig(values, problems);
  if (values["ipv4-range"] === "" && values.kvstore === "") {
    problems.push("--ipv4-range is required: this node's pod CIDR, e.g. --ipv4-range 10.200.0.0/24 (or --kvstore etcd, and the operator's cluster pool allocates it)");
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
    monitorAggregation: values["monitor-aggregation"] as MonitorAggregationLevel,
    monitorSocketPath: (values["monitor-socket-path"] as string) || join(dirname(values["socket-path"] as string), MONITOR_SOCKET_NAME),
    ...routingOptions(values),
    hubble: hubble!,
  };
  if ((values["bpf-policy-map-max"] as number) > 0) config.policyMapMax = values["bpf-policy-map-max"] as number;
  if ((values["conntrack-gc-interval"] as number) > 0) config.conntrackGcInterval = values["conntrack-gc-interval"] as number;
  if ((values["conntrack-gc-max-interval"] as number) > 0) config.conntrackGcMaxInterval = values["conntrack-gc-max-interval"] as number;
  if (sources.configDir) config.configDir = sources.configDir.path;
  if (values["prometheus-serve-addr"]) config.prometheusServeAddr = values["prometheus-serve-addr"] as string;
  if (values["hubble-metrics-server"]) config.hubbleMetricsServer = values["hubble-metrics-server"] as string;
  if ((values["hubble-metrics"] as string[]).length > 0) config.hubbleMetrics = values["hubble-metrics"] as string[];
  const kvstore = kvstoreConfig(values, sources);
  if (kvstore) config.kvstore = kvstore;
  return config;
}

/** --kvstore and its options; throws ConfigError when they do not fit together. */
function kvstoreConfig(values: Partial<Record<AgentOptionName, OptionValue>>, sources: ConfigSources): KvstoreConfig | undefined {
  const type = values.kvstore as string;
  const optText = values["kvstore-opt"] as string;
  if (type === "") {
    if (optText !== "") throw new ConfigError([`--kvstore-opt ${JSON.stringify(optText)}: given without --kvstore (options for which store?)`]);
    return undefined;
  }
  const opts = parseKvstoreOpt(optText);
  const etcd = "problem" in opts ? opts : etcdOptionsFrom(opts.value);
  if ("problem" in etcd) throw new ConfigError([`--kvstore-opt${from("kvstore-opt", sources)}: ${etcd.problem}`]);
  return { type: "etcd", etcd: etcd.value, leaseTtlMs: values["kvstore-lease-ttl"] as number };
}

function from(name: AgentOptionName, sources: ConfigSources): string {
  const given = lookup(name, AGENT_OPTIONS[name], sources);
  return given && given.from ? given.from : "";
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
    "monitor-aggregation": config.monitorAggregation,
    "monitor-socket-path": config.monitorSocketPath,
    "prometheus-serve-addr": config.prometheusServeAddr ?? "",
    "hubble-metrics-server": config.hubbleMetricsServer ?? "",
    "hubble-metrics": config.hubbleMetrics ?? [],
    "routing-mode": config.routingMode,
    "tunnel-protocol": config.tunnelProtocol,
    "tunnel-port": config.tunnelPort,
    "auto-direct-node-routes": config.autoDirectNodeRoutes,
    "enable-hubble": config.hubble.enabled,
    "hubble-socket-path": config.hubble.socketPath,
    "hubble-listen-address": config.hubble.listenAddress,
    "hubble-disable-tls": config.hubble.tls === undefined,
    "hubble-tls-cert-file": config.hubble.tls?.certFile ?? "",
    "hubble-tls-key-file": config.hubble.tls?.keyFile ?? "",
    "hubble-tls-client-ca-files": config.hubble.tls?.clientCaFiles ?? [],
    "hubble-event-buffer-capacity": config.hubble.eventBufferCapacity,
    "conntrack-gc-interval": formatDurationMs(config.conntrackGcInterval ?? 0),
    "conntrack-gc-max-interval": formatDurationMs(config.conntrackGcMaxInterval ?? 0),
  };
  if (config.ipv4NativeRoutingCidr !== undefined) options["ipv4-native-routing-cidr"] = config.ipv4NativeRoutingCidr;
  if (config.configDir !== undefined) options[CONFIG_DIR_OPTION] = config.configDir;
  if (config.kvstore) {
    options.kvstore = config.kvstore.type;
    options["kvstore-opt"] = config.kvstore.etcd.configFile ? `etcd.config=${config.kvstore.etcd.configFile}` : `etcd.address=${config.kvstore.etcd.endpoints.join(",")}`;
    options["kvstore-lease-ttl"] = `${config.kvstore.leaseTtlMs / 1000}s`;
  }
  return options;
}

/** The routing options, checked against each other and against --mtu. */
function routingOptions(values: Partial<Record<AgentOptionName, OptionValue>>): Pick<AgentConfig, "routingMode" | "tunnelProtocol" | "tunnelPort" | "autoDirectNodeRoutes" | "ipv4NativeRoutingCidr"> {
  const routingMode = values["routing-mode"] as RoutingMode;
  const autoDirectNodeRoutes = values["auto-direct-node-routes"] as boolean;
  const nativeCidr = values["ipv4-native-routing-cidr"] as string;
  const problems: string[] = [];
  if (routingMode === "tunnel" && autoDirectNodeRoutes) {
    problems.push("--auto-direct-node-routes needs --routing-mode native: tunnel mode encapsulates instead of routing");
  }
  if (routingMode === "tunnel" && (values.mtu as number) - TUNNEL_OVERHEAD < 68) {
    problems.push(`--mtu ${values.mtu as number}: tunnel mode leaves pods ${TUNNEL_OVERHEAD} bytes less, below IPv4's minimum of 68`);
  }
  if (routingMode === "native" && values["enable-ipv4-masquerade"] === true && nativeCidr === "") {
    problems.push("--ipv4-native-routing-cidr is required with --routing-mode native and masquerading: pod traffic to other nodes must not be masqueraded");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const options: ReturnType<typeof routingOptions> = {
    routingMode,
    tunnelProtocol: values["tunnel-protocol"] as TunnelProtocol,
    tunnelPort: values["tunnel-port"] as number,
    autoDirectNodeRoutes,
  };
  if (nativeCidr !== "") options.ipv4NativeRoutingCidr = nativeCidr;
  return options;
}

/**
 * Hubble's options together: TLS needs a certificate and key when there is a TCP listener and
 * TLS is not disabled (as upstream, which will not serve TCP in plaintext unless told to).
 */
function hubbleConfig(values: Partial<Record<AgentOptionName, OptionValue>>, problems: string[]): HubbleConfig | undefined {
  const socketPath = values["socket-path"] as string | undefined;
  const listenAddress = values["hubble-listen-address"] as string | undefined;
  const capacity = values["hubble-event-buffer-capacity"] as number | undefined;
  const enabled = values["enable-hubble"] === true;
  const certFile = values["hubble-tls-cert-file"] as string | undefined;
  const keyFile = values["hubble-tls-key-file"] as string | undefined;
  const wantsTls = Boolean(listenAddress) && values["hubble-disable-tls"] === false;
  if (enabled && wantsTls && (certFile === "" || keyFile === "")) {
    problems.push(`--hubble-listen-address "${listenAddress}" serves TLS: give --hubble-tls-cert-file and --hubble-tls-key-file, or --hubble-disable-tls`);
    return undefined;
  }
  if (socketPath === undefined || listenAddress === undefined || capacity === undefined) return undefined;
  const config: HubbleConfig = {
    enabled,
    socketPath: (values["hubble-socket-path"] as string) || join(dirname(socketPath), "hubble.sock"),
    listenAddress,
    eventBufferCapacity: capacity,
  };
  if (wantsTls && certFile && keyFile) config.tls = { certFile, keyFile, clientCaFiles: values["hubble-tls-client-ca-files"] as string[] };
  return config;
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

/** A listen address, or "" for off. */
function optionalListenAddress(text: string | boolean): Parsed<string> {
  const value = String(text).trim();
  if (value === "") return { value };
  const parsed = parseListenAddress(value);
  return "problem" in parsed ? parsed : { value };
}

/** Go's time.ParseDuration forms ("30s", "1m30s", "500ms", "0"), as upstream's duration flags take them; whole ms. */
function durationOption(text: string | boolean): Parsed<number> {
  const ms = parseDurationMs(String(text));
  return ms === undefined ? { problem: "must be a duration such as 30s, 5m or 1h30m" } : { value: Math.round(ms) };
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
