#!/usr/bin/env bun
/**
 * A local cluster on one machine, entirely inside network namespaces: an underlay namespace
 * with a bridge (standing in for the network between nodes, and the router to "outside") that
 * also runs etcd, `cilium operator` and `cilium relay`; one namespace per node running the real
 * `dist/cilium agent` (etcd state, VXLAN overlay, Hubble on :4244, its pod CIDR from the
 * operator's cluster pool); pods attached by the real `dist/cilium-cni`. Nothing is routed out
 * of the machine. The relay serves on a unix socket, so `hubble` works from the host.
 *
 *   scripts/cluster up [--nodes 2]
 *   scripts/cluster pod add NAME [--node 1] [--namespace default] [--labels k=v,...]
 *   scripts/cluster pod del NAME
 *   scripts/cluster exec [--detach] POD -- CMD...   (--detach: in the background, output to the pod's log)
 *   scripts/cluster env | status | down
 *
 * CLUSTER_NAME (default "cbc") prefixes everything the cluster makes.
 *
 * Processes enter only a node's network namespace (nsenter --net): `ip netns exec` would give
 * the agent a private /sys and hide the bpffs where its datapath is pinned.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const CILIUM = join(ROOT, "dist", "cilium");
/** CLUSTER_NAME (default "cbc") names every namespace, directory and pin, so clusters can coexist. */
const PREFIX = process.env.CLUSTER_NAME ?? "cbc";
if (!/^[a-z][a-z0-9]{0,5}$/.test(PREFIX)) throw new Error(`CLUSTER_NAME ${JSON.stringify(PREFIX)}: 1-6 lowercase letters/digits`);
const STATE_DIR = `/run/cilium-bun-cluster-${PREFIX}`;
const STATE_FILE = join(STATE_DIR, "cluster.json");
const BPF_ROOT = `/sys/fs/bpf/cilium-bun-cluster-${PREFIX}`;
const UNDERLAY_NS = `${PREFIX}-underlay`;
const BRIDGE = "br0";
const UNDERLAY_GATEWAY = "10.99.0.1";
const ETCD_PORT = 2379;
const ETCD_URL = `http://${UNDERLAY_GATEWAY}:${ETCD_PORT}`;
const CLUSTER_POOL = "10.200.0.0/16";
const RELAY_SOCKET = join(STATE_DIR, "relay.sock");
const HUBBLE_PORT = 4244;
const MAX_NODES = 9;

/** The cluster's own processes in the underlay namespace, by role. */
type ServiceName = "etcd" | "operator" | "relay";

/** A process the cluster started: its pid and kernel start time (so a reused pid is never signalled). */
interface Daemon {
  pid: number;
  started: string;
}

interface NodeState {
  index: number;
  name: string;
  netns: string;
  ip: string;
  podCidr: string;
  socketPath: string;
  hubbleSocket: string;
  agent?: Daemon;
}

interface PodState {
  name: string;
  node: number;
  namespace: string;
  labels: string[];
  netns: string;
  containerId: string;
  ip: string;
}

interface ClusterState {
  nodes: NodeState[];
  pods: PodState[];
  services: Partial<Record<ServiceName, Daemon>>;
}

function sh(argv: string[], options: { allowFailure?: boolean; stdin?: string } = {}): string {
  const result = Bun.spawnSync(argv, { stdin: options.stdin === undefined ? "ignore" : Buffer.from(options.stdin), stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0 && !options.allowFailure) {
    throw new Error(`${argv.join(" ")}: ${result.stderr.toString().trim() || result.stdout.toString().trim()}`);
  }
  return result.stdout.toString();
}

function load(): ClusterState | undefined {
  return existsSync(STATE_FILE) ? (JSON.parse(readFileSync(STATE_FILE, "utf8")) as ClusterState) : undefined;
}

function save(state: ClusterState): void {
  writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
}

function required(): ClusterState {
  const state = load();
  if (!state) throw new Error("no cluster is up: run `scripts/cluster up` first");
  return state;
}

function nodeDir(index: number): string {
  return join(STATE_DIR, `n${index}`);
}

/** The kernel's start time of `pid` (field 22 of /proc/PID/stat), or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function running(daemon: Daemon | undefined): daemon is Daemon {
  return daemon !== undefined && startTime(daemon.pid) === daemon.started;
}

/** Starts `argv` in namespace `netns`, detached (setsid, output to `log`): it outlives this script, as a daemon would. */
function daemon(netns: string, argv: string[], log: string): Daemon {
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  // setsid and nsenter exec in place, so $! is the daemon itself.
  const pid = Number(sh(["bash", "-c", `setsid nsenter --net=/var/run/netns/${netns} ${quoted} >>${log} 2>&1 </dev/null & echo $!`]).trim());
  return { pid, started: startTime(pid) ?? "" };
}

function tail(log: string): string {
  return existsSync(log) ? readFileSync(log, "utf8").slice(-3000) : "";
}

/** Waits until `ready`; fails early when `child` exits meanwhile. */
async function waitFor(what: string, child: Daemon, log: string, ready: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (!running(child)) throw new Error(`${what} exited; the end of its log, ${basename(log)}:\n${tail(log)}`);
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs / 1000} s; the end of its log, ${basename(log)}:\n${tail(log)}`);
    await Bun.sleep(100);
  }
}

/**
 * One HTTP/1.0 request to a server in the underlay namespace, through bash's /dev/tcp (the host
 * has no route there, by design). Returns the response body, or undefined when nothing answered.
 */
function underlayHttp(port: number, path: string, body?: string): string | undefined {
  const request =
    body === undefined
      ? `GET ${path} HTTP/1.0\r\nHost: ${UNDERLAY_GATEWAY}\r\n\r\n`
      : `POST ${path} HTTP/1.0\r\nHost: ${UNDERLAY_GATEWAY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const result = Bun.spawnSync(
    ["nsenter", `--net=/var/run/netns/${UNDERLAY_NS}`, "timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${UNDERLAY_GATEWAY}/${port} && cat >&3 && cat <&3`],
    { stdin: Buffer.from(request), stdout: "pipe", stderr: "ignore" },
  );
  if (result.exitCode !== 0) return undefined;
  const response = result.stdout.toString();
  return response.startsWith("HTTP/1.") && response.includes("\r\n\r\n") ? response.slice(response.indexOf("\r\n\r\n") + 4) : undefined;
}

function etcdHealthy(): boolean {
  return /"health":\s*"true"/.test(underlayHttp(ETCD_PORT, "/health") ?? "");
}

/** The operator replica holding the leader key in etcd (upstream-style election), if any. */
function operatorLeader(): string | undefined {
  const body = underlayHttp(ETCD_PORT, "/v3/kv/range", JSON.stringify({ key: Buffer.from("cilium/operator/leader").toString("base64") }));
  const value = body ? (JSON.parse(body) as { kvs?: { value?: string }[] }).kvs?.[0]?.value : undefined;
  return value ? Buffer.from(value, "base64").toString() : undefined;
}

async function agentHealth(socketPath: string): Promise<{ cilium?: { state: string }; kvstore?: { state: string; msg: string }; problems?: string[] } | undefined> {
  try {
    const response = await fetch("http://localhost/v1/healthz", { unix: socketPath, signal: AbortSignal.timeout(3000) } as RequestInit);
    return response.ok ? ((await response.json()) as any) : undefined;
  } catch {
    return undefined;
  }
}

/** "Connected Nodes: 2/2" as the relay reports it through `hubble status`, or undefined when it does not answer. */
function relayNodes(): { connected: number; total: number } | undefined {
  const result = Bun.spawnSync([join(ROOT, "dist", "hubble"), "status", "--server", `unix://${RELAY_SOCKET}`], { stdout: "pipe", stderr: "ignore", timeout: 5000 });
  const match = /Connected Nodes:\s*(\d+)\/(\d+)/.exec(result.stdout.toString());
  return match ? { connected: Number(match[1]), total: Number(match[2]) } : undefined;
}

async function startAgent(node: NodeState): Promise<Daemon> {
  const dir = nodeDir(node.index);
  const log = join(dir, "agent.log");
  const agent = daemon(
    node.netns,
    [
      CILIUM, "agent", "--node-name", node.name, "--state-dir", `${dir}/state`, "--bpf-root", `${BPF_ROOT}/${node.name}`,
      "--socket-path", node.socketPath, "--devices", "eth0",
      "--kvstore", "etcd", "--kvstore-opt", `etcd.address=${ETCD_URL}`,
      "--routing-mode", "tunnel", "--tunnel-protocol", "vxlan",
      "--hubble-socket-path", node.hubbleSocket, "--hubble-listen-address", `:${HUBBLE_PORT}`, "--hubble-disable-tls",
    ],
    log,
  );
  await waitFor(`the agent of ${node.name}`, agent, log, async () => (await agentHealth(node.socketPath)) !== undefined);
  return agent;
}

/** The pod CIDR the operator gave the node, as its agent reports it. */
async function agentPodCidr(node: NodeState): Promise<string> {
  const config = (await (await fetch("http://localhost/v1/config", { unix: node.socketPath } as RequestInit)).json()) as Record<string, unknown>;
  return String(config["ipv4-range"] ?? "");
}

async function startServices(state: ClusterState): Promise<void> {
  const etcdLog = join(STATE_DIR, "etcd.log");
  state.services.etcd = daemon(
    UNDERLAY_NS,
    [
      "/usr/bin/etcd", "--name", PREFIX, "--data-dir", join(STATE_DIR, "etcd"),
      "--listen-client-urls", ETCD_URL, "--advertise-client-urls", ETCD_URL,
      "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
      "--initial-cluster", `${PREFIX}=http://127.0.0.1:2380`, "--log-level", "warn", "--logger", "zap",
    ],
    etcdLog,
  );
  save(state);
  await waitFor("etcd", state.services.etcd, etcdLog, etcdHealthy);
  const operatorLog = join(STATE_DIR, "operator.log");
  state.services.operator = daemon(
    UNDERLAY_NS,
    [CILIUM, "operator", "--id", `${PREFIX}-operator`, "--kvstore", "etcd", "--kvstore-opt", `etcd.address=${ETCD_URL}`, "--cluster-pool-ipv4-cidr", CLUSTER_POOL, "--cluster-pool-ipv4-mask-size", "24"],
    operatorLog,
  );
  save(state);
  await waitFor("the operator", state.services.operator, operatorLog, () => operatorLeader() !== undefined);
}

async function startRelay(state: ClusterState): Promise<void> {
  const log = join(STATE_DIR, "relay.log");
  // The relay learns every node from one agent's Peer service and dials them on the underlay.
  state.services.relay = daemon(UNDERLAY_NS, [CILIUM, "relay", "--listen-address", `unix://${RELAY_SOCKET}`, "--peer-service", `unix://${state.nodes[0]!.hubbleSocket}`], log);
  save(state);
  const nodes = state.nodes.length;
  await waitFor(`the relay (connected to all ${nodes} nodes)`, state.services.relay, log, () => {
    const seen = relayNodes();
    return seen !== undefined && seen.connected === nodes && seen.total === nodes;
  });
}

function addNodeNamespace(node: NodeState): void {
  sh(["ip", "netns", "add", node.netns]);
  sh(["ip", "-n", node.netns, "link", "set", "lo", "up"]);
  sh(["ip", "-n", node.netns, "link", "add", "eth0", "type", "veth", "peer", "name", `n${node.index}`, "netns", UNDERLAY_NS]);
  sh(["ip", "-n", UNDERLAY_NS, "link", "set", `n${node.index}`, "master", BRIDGE, "up"]);
  sh(["ip", "-n", node.netns, "addr", "add", `${node.ip}/24`, "dev", "eth0"]);
  sh(["ip", "-n", node.netns, "link", "set", "eth0", "up"]);
  sh(["ip", "-n", node.netns, "route", "add", "default", "via", UNDERLAY_GATEWAY]);
}

async function up(nodeCount: number): Promise<void> {
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > MAX_NODES) throw new Error(`--nodes: a number from 1 to ${MAX_NODES}`);
  if (load()) throw new Error("a cluster is already up: `scripts/cluster down` first");
  if (!existsSync(CILIUM)) throw new Error(`${CILIUM} is missing: run \`bun scripts/build.ts\` first`);
  if (!existsSync("/usr/bin/etcd")) throw new Error("/usr/bin/etcd is missing: install Debian's etcd-server (scripts/install-deps does)");
  // Leftovers of an `up` that was killed before it could record anything.
  if (sh(["ip", "netns", "list"]).split("\n").some((line) => line.startsWith(`${PREFIX}-`)) || existsSync(STATE_DIR)) {
    throw new Error(`leftovers of an earlier cluster ${PREFIX} exist: \`scripts/cluster down\` first`);
  }
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const state: ClusterState = { nodes: [], pods: [], services: {} };
  save(state);
  try {
    sh(["ip", "netns", "add", UNDERLAY_NS]);
    sh(["ip", "-n", UNDERLAY_NS, "link", "set", "lo", "up"]);
    sh(["ip", "-n", UNDERLAY_NS, "link", "add", BRIDGE, "type", "bridge"]);
    sh(["ip", "-n", UNDERLAY_NS, "addr", "add", `${UNDERLAY_GATEWAY}/24`, "dev", BRIDGE]);
    sh(["ip", "-n", UNDERLAY_NS, "link", "set", BRIDGE, "up"]);
    await startServices(state);
    console.log(`etcd ${ETCD_URL} and the operator (cluster pool ${CLUSTER_POOL}) in namespace ${UNDERLAY_NS}`);

    for (let index = 1; index <= nodeCount; index++) {
      const node: NodeState = {
        index,
        name: `node${index}`,
        netns: `${PREFIX}-node${index}`,
        ip: `10.99.0.${10 + index}`,
        podCidr: "",
        socketPath: join(nodeDir(index), "cilium.sock"),
        hubbleSocket: join(nodeDir(index), "hubble.sock"),
      };
      mkdirSync(nodeDir(index), { recursive: true });
      state.nodes.push(node);
      save(state);
      addNodeNamespace(node);
      node.agent = await startAgent(node);
      node.podCidr = await agentPodCidr(node);
      save(state);
      console.log(`${node.name}: ${node.ip}, pods ${node.podCidr} (from the operator), agent pid ${node.agent.pid}, socket ${node.socketPath}`);
    }
    await startRelay(state);
    console.log(`relay on ${RELAY_SOCKET}, connected to ${nodeCount} node${nodeCount > 1 ? "s" : ""}`);
  } catch (error) {
    // Nothing partially made stays behind.
    await down(true);
    throw error;
  }
}

function cni(node: NodeState, command: "ADD" | "DEL", pod: Pick<PodState, "containerId" | "netns" | "name" | "namespace" | "labels">): Record<string, any> {
  const config = {
    cniVersion: "1.1.0",
    name: "cilium",
    type: "cilium-cni",
    "socket-path": node.socketPath,
    args: { cni: { labels: pod.labels.map((label) => ({ key: label.split("=")[0], value: label.split("=").slice(1).join("=") })) } },
  };
  const result = Bun.spawnSync(["nsenter", `--net=/var/run/netns/${node.netns}`, join(ROOT, "dist", "cilium-cni")], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/var/run/netns/${pod.netns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
      CNI_ARGS: `K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name}`,
    },
    stdin: Buffer.from(JSON.stringify(config)),
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = result.stdout.toString().trim();
  if (result.exitCode !== 0) throw new Error(`CNI ${command} of pod ${pod.name}: ${out || result.stderr.toString().trim()}`);
  return out ? JSON.parse(out) : {};
}

function podAdd(name: string, nodeIndex: number, namespace: string, labels: string[]): void {
  const state = required();
  if (!/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/.test(name)) throw new Error(`pod name ${JSON.stringify(name)}: lowercase letters, digits and '-'`);
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(namespace)) throw new Error(`--namespace ${JSON.stringify(namespace)}: lowercase letters, digits and '-'`);
  if (state.pods.some((p) => p.name === name)) throw new Error(`pod ${name} already exists`);
  const node = state.nodes.find((n) => n.index === nodeIndex);
  if (!node) throw new Error(`--node ${nodeIndex}: no such node (nodes: ${state.nodes.map((n) => n.index).join(", ")})`);
  for (const label of labels) if (!/^[^=\s]+=[^\s]*$/.test(label)) throw new Error(`--labels: ${JSON.stringify(label)} is not key=value`);
  const pod = { name, node: nodeIndex, namespace, labels, netns: `${PREFIX}-pod-${name}`, containerId: `${PREFIX}-${name}`, ip: "" };
  sh(["ip", "netns", "add", pod.netns]);
  try {
    const result = cni(node, "ADD", pod);
    pod.ip = String(result.ips?.[0]?.address ?? "").split("/")[0]!;
  } catch (error) {
    sh(["ip", "netns", "del", pod.netns], { allowFailure: true });
    throw error;
  }
  state.pods.push(pod);
  save(state);
  console.log(`pod ${name} (namespace ${namespace}) on ${node.name}: ${pod.ip}`);
}

function podDel(name: string): void {
  const state = required();
  const pod = state.pods.find((p) => p.name === name);
  if (!pod) throw new Error(`no pod named ${name}`);
  const node = state.nodes.find((n) => n.index === pod.node)!;
  cni(node, "DEL", pod);
  terminate(namespacePids(pod.netns));
  sh(["ip", "netns", "del", pod.netns], { allowFailure: true });
  state.pods = state.pods.filter((p) => p !== pod);
  save(state);
  console.log(`pod ${name} deleted`);
}

function exec(name: string, argv: string[], detach: boolean): number {
  const pod = required().pods.find((p) => p.name === name);
  if (!pod) throw new Error(`no pod named ${name}`);
  if (argv.length === 0) throw new Error("exec: give a command after --");
  if (detach) {
    // A server in the pod: it runs until `pod del` or `down` ends every process in the pod's namespace.
    const log = join(STATE_DIR, `pod-${name}.log`);
    const started = daemon(pod.netns, argv, log);
    console.log(`started in pod ${name}: pid ${started.pid}, output in ${log}`);
    return 0;
  }
  return Bun.spawnSync(["ip", "netns", "exec", pod.netns, ...argv], { stdin: "inherit", stdout: "inherit", stderr: "inherit" }).exitCode ?? 1;
}

function env(): void {
  const state = required();
  for (const node of state.nodes) {
    const NAME = node.name.toUpperCase();
    console.log(`export CILIUM_SOCK_${NAME}=${node.socketPath}`);
    console.log(`export HUBBLE_SOCK_${NAME}=${node.hubbleSocket}`);
    console.log(`export CILIUM_BPF_ROOT_${NAME}=${BPF_ROOT}/${node.name}`);
  }
  const first = state.nodes[0];
  if (first) console.log(`export CILIUM_SOCK=${first.socketPath}`);
  console.log(`export HUBBLE_SERVER=unix://${RELAY_SOCKET}`);
}

async function status(): Promise<number> {
  const state = required();
  let problems = 0;
  const line = (ok: boolean, text: string) => {
    if (!ok) problems++;
    console.log(text);
  };
  const pid = (d: Daemon | undefined) => `pid ${d?.pid ?? "-"}`;
  const etcdUp = running(state.services.etcd) && etcdHealthy();
  line(etcdUp, `etcd      ${etcdUp ? "healthy" : "NOT RESPONDING"} at ${ETCD_URL} (${pid(state.services.etcd)})`);
  const operatorUp = running(state.services.operator);
  const leader = etcdUp ? operatorLeader() : undefined;
  line(operatorUp && leader !== undefined, `operator  ${operatorUp ? "running" : "NOT RUNNING"}, leader ${leader ?? "NONE"} (${pid(state.services.operator)})`);
  const relay = running(state.services.relay) ? relayNodes() : undefined;
  line(
    relay !== undefined && relay.connected === state.nodes.length,
    `relay     ${relay ? `${relay.connected}/${relay.total} nodes connected` : "NOT RESPONDING"} on ${RELAY_SOCKET} (${pid(state.services.relay)})`,
  );
  for (const node of state.nodes) {
    const health = running(node.agent) ? await agentHealth(node.socketPath) : undefined;
    const ok = health?.cilium?.state === "Ok" && health.kvstore?.state === "Ok";
    const text = health ? `agent ${health.cilium?.state ?? "?"}, kvstore ${health.kvstore?.state ?? "?"}` : "agent NOT RESPONDING";
    line(ok, `${node.name.padEnd(9)} ${node.ip}  pods ${node.podCidr}  ${text} (${pid(node.agent)})`);
  }
  for (const pod of state.pods) console.log(`  pod ${pod.name.padEnd(16)} ${pod.namespace.padEnd(12)} node${pod.node}  ${pod.ip.padEnd(15)} ${pod.labels.join(",")}`);
  return problems ? 1 : 0;
}

/** The pids of every process in network namespace `netns` (daemons, and whatever `exec` left running). */
function namespacePids(netns: string): number[] {
  return sh(["ip", "netns", "pids", netns], { allowFailure: true }).split("\n").filter(Boolean).map(Number);
}

/** SIGTERM, then SIGKILL whatever is still there after a few seconds. */
function terminate(pids: number[]): void {
  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // Already gone.
    }
  };
  const started = new Map(pids.map((pid) => [pid, startTime(pid)]));
  const alive = () => [...started].filter(([pid, start]) => start !== undefined && startTime(pid) === start).map(([pid]) => pid);
  for (const pid of alive()) signal(pid, "SIGTERM");
  const deadline = Date.now() + 5000;
  while (alive().length && Date.now() < deadline) Bun.sleepSync(50);
  for (const pid of alive()) signal(pid, "SIGKILL");
  const killDeadline = Date.now() + 2000;
  while (alive().length && Date.now() < killDeadline) Bun.sleepSync(20);
}

async function down(quiet = false): Promise<void> {
  const state = load();
  // Whatever the state file says, take everything with our prefix: a crashed `up` may have left
  // namespaces and processes the state file never recorded.
  const namespaces = sh(["ip", "netns", "list"]).split("\n").map((line) => line.split(" ")[0]!).filter((name) => name.startsWith(`${PREFIX}-`));
  const recorded = [...Object.values(state?.services ?? {}), ...(state?.nodes ?? []).map((n) => n.agent)].filter(running).map((d) => d.pid);
  terminate([...new Set([...recorded, ...namespaces.flatMap(namespacePids)])]);
  for (const name of namespaces) sh(["ip", "netns", "del", name], { allowFailure: true });
  rmSync(BPF_ROOT, { recursive: true, force: true });
  rmSync(STATE_DIR, { recursive: true, force: true });
  if (!quiet) console.log("cluster removed: namespaces, agents, etcd, operator, relay, pinned maps and links, state");
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = args[i + 1];
  if (value === undefined || value.startsWith("--")) throw new Error(`${name} needs a value`);
  return value;
}

async function main(args: string[]): Promise<number> {
  const [command, sub] = args;
  switch (command) {
    case "up":
      await up(Number(option(args, "--nodes", "2")));
      return 0;
    case "pod":
      if (sub === "add" && args[2]) {
        const labels = option(args, "--labels", "").split(",").filter(Boolean);
        podAdd(args[2], Number(option(args, "--node", "1")), option(args, "--namespace", "default"), labels);
        return 0;
      }
      if (sub === "del" && args[2]) {
        podDel(args[2]);
        return 0;
      }
      throw new Error("usage: pod add NAME [--node N] [--namespace NS] [--labels k=v,...] | pod del NAME");
    case "exec": {
      const dash = args.indexOf("--");
      const before = args.slice(1, dash < 0 ? args.length : dash);
      const detach = before.includes("--detach") || before.includes("-d");
      const pod = before.filter((a) => a !== "--detach" && a !== "-d");
      if (pod.length !== 1 || dash < 0) throw new Error("usage: exec [--detach] POD -- CMD...");
      return exec(pod[0]!, args.slice(dash + 1), detach);
    }
    case "env":
      env();
      return 0;
    case "status":
      return await status();
    case "down":
      await down();
      return 0;
    default:
      console.error("usage: scripts/cluster up [--nodes 2] | pod add|del ... | exec [--detach] POD -- CMD | env | status | down");
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`cluster: ${(error as Error).message}`);
  process.exitCode = 1;
}
