#!/usr/bin/env bun
/**
 * A local cluster on one machine, entirely inside network namespaces: an underlay namespace
 * with a bridge (standing in for the network between nodes, and the router to "outside"), one
 * namespace per node running the real `dist/cilium agent`, and pods attached by the real
 * `dist/cilium-cni`. Nothing is routed out of the machine.
 *
 *   scripts/cluster up [--nodes 1]
 *   scripts/cluster pod add NAME [--node 1] [--namespace default] [--labels k=v,...]
 *   scripts/cluster pod del NAME
 *   scripts/cluster exec POD -- CMD...
 *   scripts/cluster env | status | down
 *
 * CLUSTER_NAME (default "cbc") prefixes everything the cluster makes.
 *
 * Processes enter only a node's network namespace (nsenter --net): `ip netns exec` would give
 * the agent a private /sys and hide the bpffs where its datapath is pinned.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

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

interface NodeState {
  index: number;
  name: string;
  netns: string;
  ip: string;
  podCidr: string;
  socketPath: string;
  pid: number;
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
}

function sh(argv: string[], options: { allowFailure?: boolean; stdin?: string; env?: Record<string, string> } = {}): string {
  const result = Bun.spawnSync(argv, {
    stdin: options.stdin === undefined ? "ignore" : Buffer.from(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: options.env,
  });
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

async function healthy(socketPath: string): Promise<boolean> {
  try {
    return (await fetch("http://localhost/v1/healthz", { unix: socketPath } as RequestInit)).ok;
  } catch {
    return false;
  }
}

async function startAgent(node: NodeState): Promise<number> {
  const dir = nodeDir(node.index);
  const log = join(dir, "agent.log");
  // setsid + redirected output: the agent outlives this script, as a daemon would.
  const pid = Number(
    sh([
      "bash",
      "-c",
      `setsid nsenter --net=/var/run/netns/${node.netns} ${CILIUM} agent --node-name ${node.name} --state-dir ${dir}/state ` +
        `--bpf-root ${BPF_ROOT}/${node.name} --socket-path ${node.socketPath} --ipv4-range ${node.podCidr} ` +
        `--devices eth0 >>${log} 2>&1 </dev/null & echo $!`,
    ]).trim(),
  );
  const deadline = Date.now() + 20_000;
  while (!(await healthy(node.socketPath))) {
    if (Date.now() > deadline) throw new Error(`the agent of ${node.name} did not come up; see ${log}:\n${readFileSync(log, "utf8")}`);
    await Bun.sleep(100);
  }
  return pid;
}

async function up(nodeCount: number): Promise<void> {
  if (load()) throw new Error("a cluster is already up: `scripts/cluster down` first");
  if (!existsSync(CILIUM)) throw new Error(`${CILIUM} is missing: run \`bun scripts/build.ts\` first`);
  if (nodeCount !== 1) {
    throw new Error("--nodes: only 1 node for now; several nodes need the etcd backend and the overlay (not built yet)");
  }
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const state: ClusterState = { nodes: [], pods: [] };
  save(state);

  sh(["ip", "netns", "add", UNDERLAY_NS]);
  sh(["ip", "-n", UNDERLAY_NS, "link", "set", "lo", "up"]);
  sh(["ip", "-n", UNDERLAY_NS, "link", "add", BRIDGE, "type", "bridge"]);
  sh(["ip", "-n", UNDERLAY_NS, "addr", "add", `${UNDERLAY_GATEWAY}/24`, "dev", BRIDGE]);
  sh(["ip", "-n", UNDERLAY_NS, "link", "set", BRIDGE, "up"]);

  for (let index = 1; index <= nodeCount; index++) {
    const node: NodeState = {
      index,
      name: `node${index}`,
      netns: `${PREFIX}-node${index}`,
      ip: `10.99.0.${10 + index}`,
      podCidr: `10.200.${index}.0/24`,
      socketPath: join(nodeDir(index), "cilium.sock"),
      pid: 0,
    };
    mkdirSync(nodeDir(index), { recursive: true });
    sh(["ip", "netns", "add", node.netns]);
    sh(["ip", "-n", node.netns, "link", "set", "lo", "up"]);
    sh(["ip", "-n", node.netns, "link", "add", "eth0", "type", "veth", "peer", "name", `n${index}`, "netns", UNDERLAY_NS]);
    sh(["ip", "-n", UNDERLAY_NS, "link", "set", `n${index}`, "master", BRIDGE, "up"]);
    sh(["ip", "-n", node.netns, "addr", "add", `${node.ip}/24`, "dev", "eth0"]);
    sh(["ip", "-n", node.netns, "link", "set", "eth0", "up"]);
    sh(["ip", "-n", node.netns, "route", "add", "default", "via", UNDERLAY_GATEWAY]);
    state.nodes.push(node);
    save(state);
    node.pid = await startAgent(node);
    save(state);
    console.log(`${node.name}: ${node.ip}, pods ${node.podCidr}, agent pid ${node.pid}, socket ${node.socketPath}`);
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
  sh(["ip", "netns", "del", pod.netns], { allowFailure: true });
  state.pods = state.pods.filter((p) => p !== pod);
  save(state);
  console.log(`pod ${name} deleted`);
}

function exec(name: string, argv: string[]): number {
  const pod = required().pods.find((p) => p.name === name);
  if (!pod) throw new Error(`no pod named ${name}`);
  if (argv.length === 0) throw new Error("exec: give a command after --");
  return Bun.spawnSync(["ip", "netns", "exec", pod.netns, ...argv], { stdin: "inherit", stdout: "inherit", stderr: "inherit" }).exitCode ?? 1;
}

function env(): void {
  const state = required();
  for (const node of state.nodes) {
    console.log(`export CILIUM_SOCK_${node.name.toUpperCase()}=${node.socketPath}`);
    console.log(`export CILIUM_BPF_ROOT_${node.name.toUpperCase()}=${BPF_ROOT}/${node.name}`);
  }
  const first = state.nodes[0];
  if (first) console.log(`export CILIUM_SOCK=${first.socketPath}`);
}

async function status(): Promise<void> {
  const state = required();
  for (const node of state.nodes) {
    console.log(`${node.name}  ${node.ip}  pods ${node.podCidr}  agent ${(await healthy(node.socketPath)) ? "healthy" : "NOT RESPONDING"} (pid ${node.pid})`);
  }
  for (const pod of state.pods) console.log(`  pod ${pod.name.padEnd(16)} ${pod.namespace.padEnd(12)} node${pod.node}  ${pod.ip.padEnd(15)} ${pod.labels.join(",")}`);
}

function down(): void {
  const state = load();
  for (const node of state?.nodes ?? []) {
    if (node.pid) sh(["kill", String(node.pid)], { allowFailure: true });
  }
  // Whatever the state file says, remove everything with our prefix: a crashed `up` may have
  // left namespaces the state file never recorded.
  for (const line of sh(["ip", "netns", "list"]).split("\n")) {
    const name = line.split(" ")[0];
    if (name?.startsWith(`${PREFIX}-`)) sh(["ip", "netns", "del", name], { allowFailure: true });
  }
  sh(["pkill", "-f", `--state-dir ${STATE_DIR}/`], { allowFailure: true });
  rmSync(BPF_ROOT, { recursive: true, force: true });
  rmSync(STATE_DIR, { recursive: true, force: true });
  console.log("cluster removed: namespaces, agents, pinned maps and links, state");
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
      await up(Number(option(args, "--nodes", "1")));
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
      if (!args[1] || dash < 0) throw new Error("usage: exec POD -- CMD...");
      return exec(args[1], args.slice(dash + 1));
    }
    case "env":
      env();
      return 0;
    case "status":
      await status();
      return 0;
    case "down":
      down();
      return 0;
    default:
      console.error("usage: scripts/cluster up [--nodes 1] | pod add|del ... | exec POD -- CMD | env | status | down");
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`cluster: ${(error as Error).message}`);
  process.exitCode = 1;
}
