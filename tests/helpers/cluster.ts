/**
 * A local multi-node cluster for end-to-end tests and benchmarks, built from the real binaries:
 *
 *   underlay  netns with bridge br0 (10.SUBNET.1/24): the real etcd, the operator replicas and
 *             the relay run here (they reach every node's eth0 over the bridge);
 *   nodes     one netns per node (TestNode) with eth0 10.SUBNET.(10+i) on the bridge, running
 *             `cilium agent --kvstore etcd` in tunnel mode (VXLAN, identity in the VNI) with no
 *             --ipv4-range: each waits for the pod CIDR the operator cuts from its cluster pool;
 *             Hubble listens on :4244 (plain TCP) so the relay can dial every node.
 *
 * destroy() removes everything it made (processes, namespaces, pins, files), also after a
 * failed start; call it from afterAll/finally.
 */
import type { Subprocess } from "bun";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TestNode } from "./cluster-node.ts";
import { EtcdServer } from "./etcd.ts";
import { run, TestNamespaces } from "./netns.ts";

const DIST = join(import.meta.dir, "../../dist");
const HUBBLE = join(DIST, "hubble");

export interface ClusterOptions {
  /** Names namespaces, links, pins and files (uniquePrefix()). */
  prefix: string;
  /** Second octet of the underlay 10.X.Y.0/24 (Y from the pid keeps parallel suites apart). */
  underlaySubnet: string;
  /** The operator's cluster pool, e.g. 10.210.0.0/16, cut into /24 node CIDRs. */
  clusterPoolCidr: string;
  /** Agents' kvstore lease (default 60s: a killed agent's node stays registered, so the relay shows it unavailable). */
  leaseTtl?: string;
  operatorReplicas?: number;
  relay?: boolean;
  /** Agent flags added to every node. */
  extraAgentArgs?: string[];
}

export interface Operator {
  id: string;
  process: Subprocess;
}

export class TestCluster {
  readonly namespaces: TestNamespaces;
  readonly nodes: TestNode[] = [];
  readonly operators = new Map<string, Operator>();
  readonly dir: string;
  underlay = "";
  etcd: EtcdServer | undefined;
  private relayProcess: Subprocess | undefined;

  constructor(readonly options: ClusterOptions) {
    this.namespaces = new TestNamespaces(options.prefix);
    this.dir = `/tmp/${options.prefix}-cluster`;
  }

  get underlayIp(): string {
    return `${this.options.underlaySubnet}.1`;
  }

  get relaySocket(): string {
    return join(this.dir, "relay.sock");
  }

  /** Underlay, etcd, operators, `nodes` agents (in parallel), the relay. */
  async start(nodes: number): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.underlay = this.namespaces.create("u");
    run(["ip", "-n", this.underlay, "link", "set", "lo", "up"]);
    run(["ip", "-n", this.underlay, "link", "add", "br0", "type", "bridge"]);
    run(["ip", "-n", this.underlay, "addr", "add", `${this.underlayIp}/24`, "dev", "br0"]);
    run(["ip", "-n", this.underlay, "link", "set", "br0", "up"]);
    this.etcd = await EtcdServer.start({ host: this.underlayIp, port: 2379, netns: this.underlay });
    for (let i = 1; i <= (this.options.operatorReplicas ?? 1); i++) this.startOperator(`op-${i}`);
    for (let i = 0; i < nodes; i++) this.addNode();
    await Promise.all(this.nodes.map((node) => node.startAgent()));
    if (this.options.relay) await this.startRelay();
  }

  /** A node namespace on the underlay with an agent configured (not started: node.startAgent()). */
  addNode(): TestNode {
    const index = this.nodes.length + 1;
    const name = `n${index}`;
    const node = new TestNode(this.namespaces, {
      name,
      podCidr: "",
      startTimeoutMs: 60_000,
      extraAgentArgs: [
        "--kvstore",
        "etcd",
        "--kvstore-opt",
        `etcd.address=${this.etcd!.url}`,
        "--kvstore-lease-ttl",
        this.options.leaseTtl ?? "60s",
        "--devices",
        "eth0",
        "--routing-mode",
        "tunnel",
        "--enable-ipv4-masquerade=false",
        "--hubble-listen-address",
        ":4244",
        "--hubble-disable-tls",
        ...(this.options.extraAgentArgs ?? []),
      ],
    });
    this.nodes.push(node);
    const uplink = `${this.options.prefix}${name}`;
    run(["ip", "-n", node.netns, "link", "add", "eth0", "type", "veth", "peer", "name", uplink, "netns", this.underlay]);
    run(["ip", "-n", this.underlay, "link", "set", uplink, "master", "br0", "up"]);
    run(["ip", "-n", node.netns, "addr", "add", `${this.nodeIp(node)}/24`, "dev", "eth0"]);
    run(["ip", "-n", node.netns, "link", "set", "eth0", "up"]);
    return node;
  }

  nodeIp(node: TestNode): string {
    return `${this.options.underlaySubnet}.${10 + this.nodes.indexOf(node) + 1}`;
  }

  /** One operator replica (`dist/cilium-operator`) in the underlay, with short election timers; logs to DIR/operator-ID.log. */
  startOperator(id: string): Operator {
    const log = Bun.file(join(this.dir, `operator-${id}.log`));
    const operator: Operator = {
      id,
      process: Bun.spawn(
        [
          "nsenter",
          `--net=/var/run/netns/${this.underlay}`,
          join(DIST, "cilium-operator"),
          "--id",
          id,
          "--kvstore",
          "etcd",
          "--kvstore-opt",
          `etcd.address=${this.etcd!.url}`,
          "--cluster-pool-ipv4-cidr",
          this.options.clusterPoolCidr,
          "--cluster-pool-ipv4-mask-size",
          "24",
          "--leader-election-lease-duration",
          "4s",
          "--leader-election-renew-deadline",
          "3s",
          "--leader-election-retry-period",
          "500ms",
        ],
        { stdin: "ignore", stdout: log, stderr: log },
      ),
    };
    this.operators.set(id, operator);
    return operator;
  }

  async killOperator(id: string): Promise<void> {
    const operator = this.operators.get(id);
    if (!operator) return;
    operator.process.kill("SIGKILL");
    await operator.process.exited;
    this.operators.delete(id);
  }

  /** `dist/hubble-relay` in the underlay, finding the nodes through n1's Peer service. */
  async startRelay(): Promise<void> {
    this.relayProcess = Bun.spawn(
      [
        "nsenter",
        `--net=/var/run/netns/${this.underlay}`,
        join(DIST, "hubble-relay"),
        "--listen-address",
        `unix://${this.relaySocket}`,
        "--peer-service",
        `unix://${join(this.nodes[0]!.dir, "hubble.sock")}`,
        "--dial-timeout",
        "2s",
        "--retry-timeout",
        "1s",
        "--sort-buffer-drain-timeout",
        "200ms",
      ],
      { stdin: "ignore", stdout: Bun.file(join(this.dir, "relay.log")), stderr: Bun.file(join(this.dir, "relay.log")) },
    );
  }

  /** The real `hubble` CLI against the relay. */
  hubble(args: string[], timeoutMs = 30_000): { exitCode: number; stdout: string; stderr: string } {
    return run([HUBBLE, ...args, "--server", `unix://${this.relaySocket}`], { allowFailure: true, timeoutMs });
  }

  /** One etcd key through etcd's JSON gateway, asked from the underlay (etcd listens only there). */
  etcdGet(key: string): { value: string; modRevision: number; lease: string } | undefined {
    const body = JSON.stringify({ key: Buffer.from(key).toString("base64") });
    const out = JSON.parse(this.etcdPost("/v3/kv/range", body)) as { kvs?: { value: string; mod_revision: string; lease?: string }[] };
    const kv = out.kvs?.[0];
    return kv ? { value: Buffer.from(kv.value, "base64").toString(), modRevision: Number(kv.mod_revision), lease: kv.lease ?? "0" } : undefined;
  }

  /** Revokes a lease: its keys go at once, as when a dead agent's lease lapses. */
  etcdRevokeLease(lease: string): void {
    this.etcdPost("/v3/lease/revoke", JSON.stringify({ ID: lease }));
  }

  private etcdPost(path: string, body: string): string {
    return run(["nsenter", `--net=/var/run/netns/${this.underlay}`, "curl", "-sf", "-m", "5", "-X", "POST", `${this.etcd!.url}${path}`, "-d", body]).stdout;
  }

  async destroy(): Promise<void> {
    this.relayProcess?.kill("SIGKILL");
    await this.relayProcess?.exited;
    for (const id of [...this.operators.keys()]) await this.killOperator(id);
    for (const node of this.nodes) await node.destroy().catch(() => undefined);
    await this.etcd?.destroy();
    this.namespaces.removeAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `check` until it yields a value other than undefined/false, or throws after timeoutMs. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(intervalMs);
  }
}
