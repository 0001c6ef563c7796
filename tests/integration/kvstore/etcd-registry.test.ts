/**
 * The node registry, the shared ipcache and the cluster policy store against a real etcd:
 * several agents' sessions (each its own client and lease) in one process.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { EtcdClient } from "../../../src/kvstore/etcd/client.ts";
import { IpcachePublisher, RemoteIpcacheWatch } from "../../../src/kvstore/etcd/ipcache.ts";
import { NodeRegistry, type ClusterNode } from "../../../src/kvstore/etcd/nodes.ts";
import { ClusterPolicyStore, type ClusterPolicyJson } from "../../../src/kvstore/etcd/policy.ts";
import { EtcdSession } from "../../../src/kvstore/etcd/session.ts";
import { AgentError } from "../../../src/agent/errors.ts";
import { EtcdServer } from "../../helpers/etcd.ts";
import { quietLogger } from "../../helpers/agent-fake-datapath.ts";

let etcd: EtcdServer;
const closers: (() => Promise<void> | void)[] = [];
const log = quietLogger()("test");

beforeAll(async () => {
  etcd = await EtcdServer.start();
});
afterAll(async () => {
  await etcd?.destroy();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  const admin = await EtcdClient.connect({ endpoints: [etcd.url] });
  await admin.raw.delete().all();
  admin.close();
});

async function session(ttlMs = 10_000): Promise<EtcdSession> {
  const client = await EtcdClient.connect({ endpoints: [etcd.url] });
  const s = new EtcdSession(client, ttlMs, log);
  await s.start(5000);
  closers.push(async () => {
    await s.stop();
    client.close();
  });
  return s;
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function registry(s: EtcdSession, node: ClusterNode): NodeRegistry {
  const r = new NodeRegistry(s, () => node, log);
  closers.push(() => r.close());
  return r;
}

test("node registry: a listener hears of nodes joining, changing, and leaving when their lease lapses", async () => {
  const events: string[] = [];
  const a = registry(await session(), { name: "a", ipv4: "10.99.0.11", podCidrs: ["10.200.1.0/24"], health: "Ok" });
  await a.start();
  await a.addListener({
    onNodeUpsert: (n) => void events.push(`upsert ${n.name} ${n.ipv4} ${n.podCidrs.join(",")}`),
    onNodeDelete: (name) => void events.push(`delete ${name}`),
  });
  const bNode: ClusterNode = { name: "b", ipv4: "10.99.0.12", podCidrs: ["10.200.2.0/24"], health: "Ok" };
  const bSession = await session(2000);
  const b = registry(bSession, bNode);
  await b.start();
  await until("b joins", () => events.length === 1);
  expect(events).toEqual(["upsert b 10.99.0.12 10.200.2.0/24"]);
  // b's own registry sees a, never itself.
  expect(b.nodes().map((n) => n.name)).toEqual(["a"]);

  bNode.podCidrs = ["10.200.2.0/24", "10.200.3.0/24"];
  await b.update();
  await until("b changes", () => events.length === 2);
  expect(events[1]).toBe("upsert b 10.99.0.12 10.200.2.0/24,10.200.3.0/24");
  // Unchanged: not written again. Health changed: written, and seen by the others.
  await b.update();
  bNode.health = "Degraded";
  await b.update();
  await until("b's health", () => a.nodes()[0]?.health === "Degraded");
  expect(events.length).toBe(3);

  await bSession.stop(); // b dies: its lease lapses after 2 s
  await until("b's lease lapses", () => events.length === 4, 10_000);
  expect(events[3]).toBe("delete b");
  expect(a.nodes()).toEqual([]);

  // A listener added later hears of the nodes known at that moment.
  const late: string[] = [];
  const c = registry(await session(), { name: "c", podCidrs: ["10.200.4.0/24"], health: "Ok" });
  await c.start();
  await until("c joins", () => a.nodes().length === 1);
  await a.addListener({ onNodeUpsert: (n) => void late.push(n.name), onNodeDelete: () => undefined });
  expect(late).toEqual(["c"]);
});

test("ipcache: entries published by one node reach the others with their host, and leave with the lease", async () => {
  const seen = new Map<string, string>();
  const aSession = await session(2000);
  const a = new IpcachePublisher(aSession, "a", () => "10.99.0.11", (ip) => (ip === "10.200.1.5" ? { namespace: "shop", podName: "db-0" } : undefined));
  await a.republish({ complete: true });
  await a.upsert("10.200.1.5", 300);
  await a.upsert("10.200.1.6", 301);
  const bSession = await session();
  const watch = new RemoteIpcacheWatch(
    bSession,
    "b",
    {
      upsert: (ip, id, host, node, pod) => void seen.set(ip, `${id} ${host} ${node}${pod ? ` ${pod.namespace}/${pod.podName}` : ""}`),
      delete: (ip) => void seen.delete(ip),
    },
    log,
  );
  closers.push(() => watch.close());
  await watch.start();
  await watch.drained();
  // A pod's names travel with its address, so flows on other nodes can name it.
  expect(Object.fromEntries(seen)).toEqual({ "10.200.1.5": "300 10.99.0.11 a shop/db-0", "10.200.1.6": "301 10.99.0.11 a" });
  // b's own entries are not handed to b.
  const bPublisher = new IpcachePublisher(bSession, "b", () => "10.99.0.12");
  await bPublisher.republish({ complete: true });
  await bPublisher.upsert("10.200.2.5", 302);
  await a.delete("10.200.1.6");
  await a.upsert("10.200.1.5", 303);
  await until("changes", () => seen.get("10.200.1.5") === "303 10.99.0.11 a shop/db-0" && !seen.has("10.200.1.6"));
  expect(seen.has("10.200.2.5")).toBe(false);
  await aSession.stop();
  await until("a's entries lapse", () => seen.size === 0, 10_000);
});

test("ipcache: a restarted agent withdraws only the entries it no longer has, once it has restored its endpoints", async () => {
  const first = await session();
  const old = new IpcachePublisher(first, "a", () => "10.99.0.11");
  await old.republish({ complete: true });
  await old.upsert("10.200.1.5", 300);
  await old.upsert("10.200.1.6", 301);
  await first.stop(); // restart: the old lease is still alive
  const again = await session();
  const restarted = new IpcachePublisher(again, "a", () => "10.99.0.11");
  await restarted.republish(); // reconnect before restore: withdraws nothing
  expect((await again.client.range("cilium/state/ip/v1/default/")).entries.length).toBe(2);
  await restarted.upsert("10.200.1.5", 300);
  await restarted.republish({ complete: true });
  const left = (await again.client.range("cilium/state/ip/v1/default/")).entries;
  expect(left.map((e) => e.key)).toEqual(["cilium/state/ip/v1/default/10.200.1.5"]);
  expect(left[0]!.lease).not.toBe("0");
});

test("cluster policy: each agent applies every revision; a write based on a stale revision is refused", async () => {
  const applied: Record<string, number[]> = { a: [], b: [] };
  const stores: Record<string, ClusterPolicyStore> = {};
  for (const name of ["a", "b"]) {
    const s = await session();
    stores[name] = new ClusterPolicyStore(s, async (p: ClusterPolicyJson) => void applied[name]!.push(p.revision), log);
    closers.push(() => stores[name]!.close());
    expect(await stores[name]!.start()).toBe(false);
  }
  await stores.a!.publish({ revision: 2, rules: [] });
  await until("both apply 2", () => applied.a!.includes(2) && applied.b!.includes(2));
  await stores.b!.publish({ revision: 3, rules: [] });
  await until("both apply 3", () => applied.a!.includes(3) && applied.b!.includes(3));

  // Two writers racing from the same revision: one wins, the other is told.
  const results = await Promise.allSettled([stores.a!.publish({ revision: 4, rules: [] }), stores.b!.publish({ revision: 4, rules: [] })]);
  const refused = results.filter((r) => r.status === "rejected");
  expect(refused.length).toBe(1);
  const error = (refused[0] as PromiseRejectedResult).reason as AgentError;
  expect(error.kind).toBe("conflict");
  expect(error.message).toContain("changed on another node");
});
