/**
 * A node for end-to-end tests: a network namespace running the real `cilium agent` (the compiled
 * dist/cilium), with pods added through the real CNI plugin exactly as a runtime calls it.
 *
 * Processes enter only the node's *network* namespace (nsenter --net): `ip netns exec` would also
 * give them a private mount namespace with a fresh /sys, hiding the bpffs where the agent pins
 * its maps and links — pins that must outlive the agent.
 */
import type { Subprocess } from "bun";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { run, TestNamespaces, type CommandResult } from "./netns.ts";

export const CILIUM = join(import.meta.dir, "../../dist/cilium");

export interface NodeOptions {
  name: string;
  podCidr: string;
  extraAgentArgs?: string[];
  /** How long startAgent waits for the agent to answer (default 15 s). */
  startTimeoutMs?: number;
}

export interface CniInvocation {
  command: "ADD" | "DEL" | "CHECK" | "STATUS" | "GC" | "VERSION";
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  config?: Record<string, unknown> | string;
}

export interface CniOutcome {
  exitCode: number;
  json: Record<string, any> | undefined;
  stdout: string;
  stderr: string;
}

export interface Pod {
  name: string;
  namespace: string;
  containerId: string;
  netns: string;
  ip: string;
}

export class TestNode {
  readonly dir: string;
  readonly socketPath: string;
  readonly bpfRoot: string;
  readonly netns: string;
  private agent: Subprocess | undefined;

  constructor(
    readonly namespaces: TestNamespaces,
    readonly options: NodeOptions,
  ) {
    this.netns = namespaces.create(options.name);
    this.dir = `/tmp/${namespaces.prefix}-${options.name}`;
    this.socketPath = join(this.dir, "cilium.sock");
    this.bpfRoot = `/sys/fs/bpf/${namespaces.prefix}-${options.name}`;
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.bpfRoot, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    run(["ip", "-n", this.netns, "link", "set", "lo", "up"]);
  }

  get netnsPath(): string {
    return `/var/run/netns/${this.netns}`;
  }

  /** Runs argv inside the node's network namespace only. */
  nodeArgv(argv: string[]): string[] {
    return ["nsenter", `--net=${this.netnsPath}`, ...argv];
  }

  async startAgent(): Promise<void> {
    const log = Bun.file(join(this.dir, "agent.log"));
    this.agent = Bun.spawn(
      this.nodeArgv([
        CILIUM,
        "agent",
        "--node-name",
        this.options.name,
        "--state-dir",
        join(this.dir, "state"),
        "--bpf-root",
        this.bpfRoot,
        "--socket-path",
        this.socketPath,
        // No pod CIDR: in etcd mode the agent waits for the one the operator allocates.
        ...(this.options.podCidr ? ["--ipv4-range", this.options.podCidr] : []),
        ...(this.options.extraAgentArgs ?? []),
      ]),
      { stdin: "ignore", stdout: log, stderr: log },
    );
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 15_000);
    while (!(await this.healthy())) {
      if (this.agent.exitCode !== null || Date.now() > deadline) {
        throw new Error(`agent on ${this.options.name} did not come up: ${await log.text()}`);
      }
      await Bun.sleep(50);
    }
  }

  /** The running agent's pid (nsenter execs the agent, so it is the agent's own), if started. */
  get agentPid(): number | undefined {
    return this.agent?.pid;
  }

  async healthy(): Promise<boolean> {
    if (!existsSync(this.socketPath)) return false;
    try {
      const response = await fetch("http://localhost/v1/healthz", { unix: this.socketPath } as RequestInit);
      return response.ok;
    } catch {
      return false;
    }
  }

  /** kill -9: no clean-up of any kind, as a crash. */
  async killAgent(): Promise<void> {
    const agent = this.agent;
    if (!agent) return;
    agent.kill("SIGKILL");
    await agent.exited;
    this.agent = undefined;
  }

  async stopAgent(): Promise<void> {
    const agent = this.agent;
    if (!agent) return;
    agent.kill("SIGTERM");
    await agent.exited;
    this.agent = undefined;
  }

  async api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`http://localhost/v1${path}`, {
      method,
      unix: this.socketPath,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? undefined : { "content-type": "application/json" },
    } as RequestInit);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  networkConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: "1.1.0", name: "cilium", type: "cilium-cni", "socket-path": this.socketPath, ...extra };
  }

  /** Invokes the plugin (dist/cilium-cni) in the node's netns with env and stdin as a runtime does. */
  cni(invocation: CniInvocation): CniOutcome {
    const config = invocation.config ?? this.networkConfig();
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", CNI_COMMAND: invocation.command, CNI_PATH: "/opt/cni/bin" };
    if (invocation.containerId) env.CNI_CONTAINERID = invocation.containerId;
    if (invocation.netns) env.CNI_NETNS = invocation.netns;
    if (invocation.ifname) env.CNI_IFNAME = invocation.ifname;
    if (invocation.args) env.CNI_ARGS = invocation.args;
    const result = Bun.spawnSync(this.nodeArgv([join(import.meta.dir, "../../dist/cilium-cni")]), {
      env,
      stdin: Buffer.from(typeof config === "string" ? config : JSON.stringify(config)),
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
    });
    const stdout = result.stdout.toString();
    let json: Record<string, any> | undefined;
    try {
      json = stdout.trim() ? JSON.parse(stdout) : undefined;
    } catch {
      json = undefined;
    }
    return { exitCode: result.exitCode ?? -1, json, stdout, stderr: result.stderr.toString() };
  }

  /**
   * A pod: its own namespace, attached through CNI ADD. `labels` go in the network config's
   * args.cni.labels (the CNI convention), which the plugin passes as the pod's labels (source k8s).
   */
  addPod(name: string, namespace = "default", labels: Record<string, string> = {}): Pod {
    const netns = this.namespaces.create(`${this.options.name}-${name}`);
    const containerId = `${this.namespaces.prefix}${this.options.name}${name}`;
    const entries = Object.entries(labels).map(([key, value]) => ({ key, value }));
    const outcome = this.cni({
      command: "ADD",
      containerId,
      netns: `/var/run/netns/${netns}`,
      ifname: "eth0",
      args: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
      ...(entries.length > 0 ? { config: this.networkConfig({ args: { cni: { labels: entries } } }) } : {}),
    });
    if (outcome.exitCode !== 0) throw new Error(`CNI ADD of ${name} failed: ${outcome.stdout} ${outcome.stderr}`);
    const ip = String(outcome.json!.ips[0].address).split("/")[0]!;
    return { name, namespace, containerId, netns, ip };
  }

  delPod(pod: Pod): CniOutcome {
    return this.cni({ command: "DEL", containerId: pod.containerId, netns: `/var/run/netns/${pod.netns}`, ifname: "eth0" });
  }

  /** The real CLI against this node's agent (`-H unix://...` added); throws unless it exits 0, when `check`. */
  cilium(args: string[], options: { stdin?: string; check?: boolean } = {}): CommandResult {
    const result = run([CILIUM, ...args, "-H", `unix://${this.socketPath}`], { stdin: options.stdin, allowFailure: options.check === false, timeoutMs: 30_000 });
    return result;
  }

  /** Host-side interfaces of pods in the node namespace. */
  lxcInterfaces(): string[] {
    const links = JSON.parse(run(["ip", "-j", "-n", this.netns, "link", "show"]).stdout) as { ifname: string }[];
    return links.map((l) => l.ifname).filter((n) => n.startsWith("lxc"));
  }

  bpfEndpointIps(): string[] {
    const out = run([CILIUM, "bpf", "endpoint", "list", "--bpf-root", this.bpfRoot, "-o", "json"]).stdout;
    return (JSON.parse(out) as { ip: string }[]).map((e) => e.ip).sort();
  }

  async logs(): Promise<string> {
    return Bun.file(join(this.dir, "agent.log")).text();
  }

  /** Stops the agent and removes its state, pins and files (namespaces go with TestNamespaces). */
  async destroy(): Promise<void> {
    await this.stopAgent().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.bpfRoot, { recursive: true, force: true });
  }
}
