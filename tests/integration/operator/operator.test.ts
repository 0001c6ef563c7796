/**
 * Two replicas of the real operator binary (dist/cilium-operator) against a real etcd: one
 * leads; it hands pod CIDRs from the cluster pool to registered nodes, releases a gone node's
 * CIDR after the node GC interval (and only then reuses it), collects unused identities; when
 * the leader is killed the other replica takes over within 15 s.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { join } from "node:path";
import { EtcdClient } from "../../../src/kvstore/etcd/client.ts";
import { identityClaimKey, identityKey, NODES_PREFIX } from "../../../src/kvstore/etcd/keys.ts";
import { podCidrKey, podCidrNodeKey, waitForPodCidr } from "../../../src/kvstore/etcd/pod-cidrs.ts";
import { OPERATOR_LEADER_KEY } from "../../../src/operator/leader.ts";
import { EtcdServer } from "../../helpers/etcd.ts";
import { quietLogger } from "../../helpers/agent-fake-datapath.ts";

const OPERATOR = join(import.meta.dir, "../../../dist/cilium-operator");
const quiet = quietLogger()("test");

let etcd: EtcdServer;
let client: EtcdClient;
const replicas = new Map<string, Subprocess>();

function startReplica(id: string): void {
  const proc = Bun.spawn(
    [
      OPERATOR,
      "--id",
      id,
      "--kvstore",
      "etcd",
      "--kvstore-opt",
      `etcd.address=${etcd.url}`,
      "--cluster-pool-ipv4-cidr",
      "10.220.0.0/16",
      "--cluster-pool-ipv4-mask-size",
      "24",
      "--nodes-gc-interval",
      "2s",
      "--identity-gc-interval",
      "1s",
      "--leader-election-lease-duration",
      "4s",
      "--leader-election-renew-deadline",
      "3s",
      "--leader-election-retry-period",
      "500ms",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  replicas.set(id, proc);
}

async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await Bun.sleep(100);
  }
}

const leader = async () => (await client.get(OPERATOR_LEADER_KEY))?.value;
const allocation = async (node: string) => (await client.get(podCidrNodeKey(node)))?.value;

/** Registers a node as an agent does: its entry under its own lease. Answers the lease. */
async function registerNode(name: string, podCidrs: string[] = []): Promise<string> {
  const lease = await client.grantLease(60);
  await client.put(`${NODES_PREFIX}${name}`, JSON.stringify({ name, ipv4: "10.99.0.11", podCidrs, health: "Ok" }), lease);
  return lease;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  client = await EtcdClient.connect({ endpoints: [etcd.url] });
  startReplica("op-1");
  startReplica("op-2");
});

afterAll(async () => {
  for (const proc of replicas.values()) proc.kill("SIGKILL");
  await Promise.all([...replicas.values()].map((p) => p.exited));
  client?.close();
  await etcd?.destroy();
});

describe("cilium operator", () => {
  test("exactly one replica leads", async () => {
    const id = await eventually(leader, (v) => v !== undefined);
    expect(["op-1", "op-2"]).toContain(id!);
    await Bun.sleep(1500);
    expect(await leader()).toBe(id);
  });

  test("cluster-pool IPAM: each registered node gets its own CIDR; one it already uses is kept", async () => {
    await registerNode("node-a");
    await registerNode("node-b");
    await registerNode("node-c", ["10.220.7.0/24"]);
    expect(await waitForPodCidr(client, "node-a", quiet, AbortSignal.timeout(10_000), 100)).toBe("10.220.0.0/24");
    expect(await waitForPodCidr(client, "node-b", quiet, AbortSignal.timeout(10_000), 100)).toBe("10.220.1.0/24");
    expect(await waitForPodCidr(client, "node-c", quiet, AbortSignal.timeout(10_000), 100)).toBe("10.220.7.0/24");
    expect((await client.get(podCidrKey("10.220.1.0/24")))?.value).toBe("node-b");
  });

  test("a gone node's CIDR is released only after the node GC interval, then reused", async () => {
    const leaseE = await registerNode("node-e");
    expect(await waitForPodCidr(client, "node-e", quiet, AbortSignal.timeout(10_000), 100)).toBe("10.220.2.0/24");
    await client.revokeLease(leaseE); // the agent died: its registry entry lapses
    await Bun.sleep(1000);
    expect(await allocation("node-e")).toBe("10.220.2.0/24"); // still within --nodes-gc-interval 2s
    await registerNode("node-f");
    expect(await waitForPodCidr(client, "node-f", quiet, AbortSignal.timeout(10_000), 100)).toBe("10.220.3.0/24");
    expect(await eventually(() => allocation("node-e"), (v) => v === undefined)).toBeUndefined();
    expect(await client.get(podCidrKey("10.220.2.0/24"))).toBeUndefined();
    await registerNode("node-g");
    expect(await waitForPodCidr(client, "node-g", quiet, AbortSignal.timeout(10_000), 100)).toBe("10.220.2.0/24");
  });

  test("identity GC removes identities no node claims and keeps claimed ones", async () => {
    await client.put(identityKey(5000), "k8s:app=gone;");
    await client.put(identityKey(5001), "k8s:app=used;");
    const lease = await client.grantLease(60);
    await client.put(identityClaimKey("k8s:app=used;", "node-a"), "5001", lease);
    expect(await eventually(() => client.get(identityKey(5000)), (v) => v === undefined)).toBeUndefined();
    expect((await client.get(identityKey(5001)))?.value).toBe("k8s:app=used;");
  });

  test("when the leader is killed, the other replica takes over within 15 s and keeps allocating", async () => {
    const old = (await leader())!;
    replicas.get(old)!.kill("SIGKILL");
    const killedAt = Date.now();
    const next = await eventually(leader, (v) => v !== undefined && v !== old, 15_000);
    expect(next).toBe(old === "op-1" ? "op-2" : "op-1");
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    await registerNode("node-h");
    expect(await waitForPodCidr(client, "node-h", quiet, AbortSignal.timeout(10_000), 100)).toBe("10.220.4.0/24");
  });
});

describe("cilium operator configuration", () => {
  test("without a kvstore it names the problem and exits 2", () => {
    const result = Bun.spawnSync([OPERATOR, "--cluster-pool-ipv4-cidr", "10.220.0.0/16"], { stderr: "pipe" });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.toString()).toContain("--kvstore");
  });
});
