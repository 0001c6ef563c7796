/**
 * Shared plumbing of the pod-networking benchmarks (cni-latency, pod-throughput, agent-memory):
 * names, the node running the real agent (tests/helpers/cluster-node.ts), the plain-bridge
 * baseline node, pod-side processes, and RSS readings. Lives in lib/ so that run.ts, which
 * loads every scripts/benchmarks/*.ts as a benchmark, does not pick it up.
 *
 * Every namespace, link, pin and file is named with benchPrefix() and removed by the caller's
 * finally; interfaces stay inside namespaces made here, never the machine's own.
 */
import type { Subprocess } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CILIUM } from "../../../tests/helpers/cluster-node.ts";
import { netnsPath, run, type TestNamespaces } from "../../../tests/helpers/netns.ts";

/** "bn123": short, per process, leaving room in 15-byte interface names. */
export function benchPrefix(): string {
  return `bn${process.pid % 1000}`;
}

export const CILIUM_CNI = join(import.meta.dir, "../../../dist/cilium-cni");
export const REFERENCE_CNI_DIR = "/usr/lib/cni";
export const TCP_RR = join(import.meta.dir, "tcp-rr.ts");

/** Why a pod benchmark cannot run here, if it cannot: root, the built binary, and tools. */
export function podBenchUnavailable(tools: string[] = []): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, BPF)";
  if (!existsSync(CILIUM)) return "dist/cilium is not built (bun scripts/build.ts)";
  for (const tool of ["ip", "nsenter", ...tools]) {
    if (tool.startsWith("/") ? !existsSync(tool) : !Bun.which(tool)) return `needs ${tool}`;
  }
  return undefined;
}

/** argv run inside a namespace's network namespace only (see cluster-node.ts for why not `ip netns exec`). */
export function inNetns(netns: string, argv: string[]): string[] {
  return ["nsenter", `--net=${netnsPath(netns)}`, ...argv];
}

/** A background process in a namespace, stopped by stop(); its output is kept for errors. */
export interface Background {
  readonly process: Subprocess<"ignore", "pipe", "pipe">;
  stop(): Promise<void>;
}

/**
 * Starts argv in `netns` and waits until `ready()` holds (polled), or throws with its stderr.
 */
export async function startInNetns(netns: string, argv: string[], ready: () => boolean, what: string): Promise<Background> {
  const child = Bun.spawn(inNetns(netns, argv), { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const background: Background = {
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await child.exited;
    },
  };
  const deadline = Date.now() + 10_000;
  while (!ready()) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await background.stop();
      throw new Error(`${what} did not start in ${netns}: ${await new Response(child.stderr).text()}`);
    }
    await Bun.sleep(25);
  }
  return background;
}

/** True when something in `netns` listens on TCP `port`. */
export function listening(netns: string, port: number): boolean {
  const out = run(["ip", "netns", "exec", netns, "ss", "-Hltn", `sport = :${port}`], { allowFailure: true }).stdout;
  return out.trim().length > 0;
}

/** VmRSS and VmHWM of a process, in MiB. */
export function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) / 1024;
  };
  return { rssMb: kb("VmRSS"), hwmMb: kb("VmHWM") };
}

export interface PlainPod {
  netns: string;
  ip: string;
}

/**
 * The no-BPF baseline: a node namespace with a Linux bridge, and one namespace per pod joined to
 * it by a veth (pod end eth0, created directly in the pod's namespace), all in one /24, built
 * with iproute2. IPv6 is off on the pods' eth0 as the CNI plugin does for ours.
 */
export function plainBridgeNode(namespaces: TestNamespaces, prefix: string, subnet24: string, podNames: string[]): { node: string; pods: PlainPod[] } {
  const node = namespaces.create("plain");
  const bridge = `${prefix}pbr`;
  run(["ip", "-n", node, "link", "set", "lo", "up"]);
  run(["ip", "-n", node, "link", "add", bridge, "type", "bridge"]);
  run(["ip", "-n", node, "addr", "add", `${subnet24}.1/24`, "dev", bridge]);
  run(["ip", "-n", node, "link", "set", bridge, "up"]);
  const pods = podNames.map((name, i) => {
    const netns = namespaces.create(`plain-${name}`);
    const hostEnd = `${prefix}pv${i}`;
    const ip = `${subnet24}.${10 + i}`;
    run(["ip", "-n", node, "link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    run(["ip", "-n", node, "link", "set", hostEnd, "master", bridge]);
    run(["ip", "-n", node, "link", "set", hostEnd, "up"]);
    run(["ip", "-n", netns, "link", "set", "lo", "up"]);
    run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"]);
    run(["ip", "-n", netns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    run(["ip", "-n", netns, "link", "set", "eth0", "up"]);
    return { netns, ip };
  });
  return { node, pods };
}
