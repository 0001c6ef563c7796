/**
 * Cluster-wide identities against a real etcd: several agents' backends (each its own client,
 * lease and node name) allocate at once; leases lapse; the operator's collection.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { LabelSet } from "../../../src/identity/labels.ts";
import { EtcdClient } from "../../../src/kvstore/etcd/client.ts";
import { EtcdIdentityBackend } from "../../../src/kvstore/etcd/identities.ts";
import { collectUnusedIdentities } from "../../../src/kvstore/etcd/identity-gc.ts";
import { identityKey, IDENTITY_ID_PREFIX, IDENTITY_VALUE_PREFIX } from "../../../src/kvstore/etcd/keys.ts";
import { EtcdSession } from "../../../src/kvstore/etcd/session.ts";
import { EtcdServer } from "../../helpers/etcd.ts";
import { quietLogger } from "../../helpers/agent-fake-datapath.ts";

let etcd: EtcdServer;
const open: { session: EtcdSession; backend: EtcdIdentityBackend; client: EtcdClient }[] = [];

beforeAll(async () => {
  etcd = await EtcdServer.start();
});

afterAll(async () => {
  await etcd?.destroy();
});

afterEach(async () => {
  for (const agent of open.splice(0)) {
    agent.backend.close();
    await agent.session.stop();
    agent.client.close();
  }
  const admin = await EtcdClient.connect({ endpoints: [etcd.url] });
  await admin.raw.delete().all();
  admin.close();
});

async function agent(node: string, ttlMs = 10_000, waitMs = 2000) {
  const client = await EtcdClient.connect({ endpoints: [etcd.url] });
  const log = quietLogger()("test");
  const session = new EtcdSession(client, ttlMs, log);
  const backend = new EtcdIdentityBackend({ session, node, log, waitMs });
  await session.start(5000);
  await backend.start();
  const entry = { session, backend, client };
  open.push(entry);
  return entry;
}

const labels = (...texts: string[]) => LabelSet.parse(texts);

test("agents asking at once for the same labels get one number; different labels never share one", async () => {
  const agents = await Promise.all(["n1", "n2", "n3"].map((n) => agent(n)));
  const sets = Array.from({ length: 20 }, (_, i) => labels(`k8s:app=app${i}`, "k8s:io.kubernetes.pod.namespace=default"));
  const results = await Promise.all(agents.map((a) => Promise.all(sets.map((s) => a.backend.allocate(s)))));
  for (let i = 0; i < sets.length; i++) {
    expect(results[1]![i]).toBe(results[0]![i]!);
    expect(results[2]![i]).toBe(results[0]![i]!);
    expect(results[0]![i]!).toBeGreaterThanOrEqual(256);
  }
  expect(new Set(results[0]).size).toBe(sets.length);
  // Every agent's claim is in etcd, and one master per set.
  const { entries: masters } = await agents[0]!.client.range(IDENTITY_ID_PREFIX);
  expect(masters.length).toBe(sets.length);
  const { entries: claims } = await agents[0]!.client.range(IDENTITY_VALUE_PREFIX);
  expect(claims.length).toBe(sets.length * 3);
  // Another node sees the labels of a number.
  expect(String(await agents[2]!.backend.lookup(results[0]![3]!))).toBe(String(sets[3]));
});

test("a dead agent's claims lapse with its lease; collection then frees the numbers nobody claims", async () => {
  const [a, b] = await Promise.all([agent("a", 2000), agent("b", 10_000)]);
  const shared = await a.backend.allocate(labels("k8s:app=shared"));
  expect(await b.backend.allocate(labels("k8s:app=shared"))).toBe(shared);
  const onlyA = await a.backend.allocate(labels("k8s:app=only-a"));
  expect((await collectUnusedIdentities(a.client)).deleted).toEqual([]);

  await a.session.stop(); // the agent dies: no more heartbeats
  const deadline = Date.now() + 10_000;
  while ((await b.client.range(`${IDENTITY_VALUE_PREFIX}k8s:app=only-a;/`)).entries.length > 0) {
    if (Date.now() > deadline) throw new Error("the dead agent's claim did not lapse");
    await Bun.sleep(200);
  }
  const gc = await collectUnusedIdentities(b.client);
  expect(gc.deleted).toEqual([onlyA]);
  expect(gc.inUse).toBe(1);
  expect(await b.client.get(identityKey(onlyA))).toBeUndefined();
  expect((await b.client.get(identityKey(shared)))?.value).toBe("k8s:app=shared;");

  // Released by the last user: collected too.
  await b.backend.release(shared);
  expect((await collectUnusedIdentities(b.client)).deleted).toEqual([shared]);
});

test("a number whose claims lapsed is reused for the same labels, and not given to other labels", async () => {
  const a = await agent("a");
  const id = await a.backend.allocate(labels("k8s:app=web"));
  await a.backend.release(id);
  const b = await agent("b");
  expect(await b.backend.allocate(labels("k8s:app=web"))).toBe(id);
  const other = await b.backend.allocate(labels("k8s:app=db"));
  expect(other).not.toBe(id);
});

test("etcd down: an allocation fails with a clear error after its bounded wait, and works once etcd is back", async () => {
  const a = await agent("a", 4000, 1500);
  const before = await a.backend.allocate(labels("k8s:app=before"));
  await etcd.stop();
  try {
    await expect(a.backend.allocate(labels("k8s:app=during"))).rejects.toThrow(/cannot allocate an identity for k8s:app=during: .*etcd.*unreachable/);
    await expect(a.backend.allocate(labels("k8s:app=during2"))).rejects.toThrow(/etcd.*unreachable/);
    // Held numbers keep answering without etcd.
    expect(await a.backend.allocate(labels("k8s:app=before"))).toBe(before);
  } finally {
    await etcd.start();
  }
  let after: number | undefined;
  const deadline = Date.now() + 15_000;
  while (after === undefined) {
    after = await a.backend.allocate(labels("k8s:app=after")).catch(async (error) => {
      if (Date.now() > deadline) throw error;
      await Bun.sleep(200);
      return undefined;
    });
  }
  expect(after).toBeGreaterThanOrEqual(256);
  expect(after).not.toBe(before);
  // The claim made before the outage is in etcd again.
  expect((await a.client.range(`${IDENTITY_VALUE_PREFIX}k8s:app=before;/`)).entries.map((e) => e.value)).toEqual([String(before)]);
});
