/**
 * Other nodes' endpoints in the policy (kvstore mode), with the recording fake datapath: a remote
 * address's identity enters every local policy before the address maps to it in the ipcache,
 * leaves after the address is gone, and stays while local pods still hold it. The identity
 * backend is a memory backend standing in for the cluster's (etcd: tests/integration/kvstore).
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { remoteIpcacheHandler } from "../../src/agent/cluster/remote-ipcache.ts";
import { publishingDatapath } from "../../src/agent/cluster/publishing-datapath.ts";
import { EndpointManager } from "../../src/agent/endpoint/manager.ts";
import { Serial } from "../../src/agent/endpoint/serial.ts";
import { EndpointStore } from "../../src/agent/endpoint/store.ts";
import { HealthProblems } from "../../src/agent/health.ts";
import { Ipam } from "../../src/agent/ipam/index.ts";
import { PolicyManager } from "../../src/agent/policy/manager.ts";
import { MemoryIdentityBackend } from "../../src/identity/backend.ts";
import { LabelSet } from "../../src/identity/labels.ts";
import { parseCidr } from "../../src/net/ipv4.ts";
import { RecordingDatapath, quietLogger } from "../helpers/agent-fake-datapath.ts";

const TCP = 6;
let dir: string;
let datapath: RecordingDatapath;
let backend: MemoryIdentityBackend;
let ipam: Ipam;
let policy: PolicyManager;
let endpoints: EndpointManager;
const published: string[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "agent-remote-"));
  datapath = new RecordingDatapath();
  backend = new MemoryIdentityBackend();
  published.length = 0;
  ipam = Ipam.open(parseCidr("10.200.0.0/24"), dir);
  const serial = new Serial();
  const publisher = { upsert: async (ip: string, id: number) => void published.push(`upsert ${ip} ${id}`), delete: async (ip: string) => void published.push(`delete ${ip}`) };
  policy = new PolicyManager({
    datapath: publishingDatapath(datapath, "10.200.0.0/24", publisher),
    stateDir: dir,
    enforcement: "default",
    allowLocalhost: false,
    identityBackend: backend,
    serial,
    log: quietLogger()("policy"),
  });
  await policy.start();
  endpoints = new EndpointManager({ ipam, datapath, store: new EndpointStore(dir), health: new HealthProblems(), log: quietLogger()("endpoints"), policy, serial });
  await endpoints.restore();
  await policy.finishRestore();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function pod(name: string, labels: string[]) {
  const ip = ipam.allocate(`${name}:eth0`);
  return endpoints.create(`cni-attachment-id:${name}:eth0`, {
    "container-id": name,
    "container-interface-name": "eth0",
    "interface-name": `lxc${name}`,
    "interface-index": 10,
    mac: "0a:58:0a:c8:00:05",
    "host-mac": "0a:58:0a:c8:00:01",
    addressing: { ipv4: ip },
    labels,
  });
}

function ingressAllows(endpointId: number): string[] {
  return (datapath.policies.get(endpointId)?.entries ?? []).filter((e) => !e.deny && e.direction === "ingress").map((e) => `${e.identity} ${e.protocol}/${e.port}`).sort();
}

const POLICY = JSON.stringify([{ endpointSelector: { matchLabels: { app: "db" } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: "web" } }], toPorts: [{ ports: [{ port: "80", protocol: "TCP" }] }] }] }]);

test("a remote address's identity is in the policy before the ipcache maps it, and leaves after", async () => {
  const db = await pod("db", ["unspec:app=db"]);
  await policy.importPolicy(POLICY);
  expect(ingressAllows(db.id)).toEqual([]);
  // Another node's web pod, identity 700 (allocated there).
  const webLabels = LabelSet.parse(["unspec:app=web"]);
  const handler = remoteIpcacheHandler({ datapath, policy, labelsOf: async (id) => (id === 700 ? webLabels : undefined), log: quietLogger()("sync") });
  const before = datapath.sequence.length;
  await handler.upsert("10.200.1.5", 700, "10.99.0.11", "n1");
  const steps = datapath.sequence.slice(before);
  expect(steps).toEqual([`setEndpointPolicy ${db.id}`, "upsertIpcache 10.200.1.5/32 700 via 10.99.0.11"]);
  expect(ingressAllows(db.id)).toEqual([`700 ${TCP}/80`]);
  expect(policy.identity(700)?.labels).toEqual(["unspec:app=web"]);
  // Remote addresses are not published again as this node's.
  expect(published.filter((p) => p.includes("10.200.1.5"))).toEqual([]);
  // This node's endpoint was published.
  expect(published).toContain(`upsert ${db.addressing.ipv4} ${db.identity}`);

  const after = datapath.sequence.length;
  await handler.delete("10.200.1.5", 700);
  expect(datapath.sequence.slice(after)).toEqual(["deleteIpcache 10.200.1.5/32", `setEndpointPolicy ${db.id}`]);
  expect(ingressAllows(db.id)).toEqual([]);
  expect(policy.identity(700)).toBeUndefined();
});

test("an identity held by a local pod and a remote address stays until both let go", async () => {
  const db = await pod("db", ["unspec:app=db"]);
  await policy.importPolicy(POLICY);
  const web = await pod("web", ["unspec:app=web"]);
  const id = web.identity!;
  const handler = remoteIpcacheHandler({ datapath, policy, labelsOf: async () => LabelSet.parse(["unspec:app=web"]), log: quietLogger()("sync") });
  await handler.upsert("10.200.1.5", id, "10.99.0.11", "n1");
  await endpoints.delete(`cni-attachment-id:web:eth0`);
  expect(published).toContain(`delete ${web.addressing.ipv4}`);
  expect(ingressAllows(db.id)).toEqual([`${id} ${TCP}/80`]);
  await handler.delete("10.200.1.5", id);
  expect(ingressAllows(db.id)).toEqual([]);
});

test("a remote address whose identity changes: the new one is in before the address moves, the old one out after", async () => {
  const db = await pod("db", ["unspec:app=db"]);
  await policy.importPolicy(POLICY);
  const labels = new Map([
    [700, LabelSet.parse(["unspec:app=web"])],
    [701, LabelSet.parse(["unspec:app=other"])],
  ]);
  const handler = remoteIpcacheHandler({ datapath, policy, labelsOf: async (id) => labels.get(id), log: quietLogger()("sync") });
  await handler.upsert("10.200.1.5", 700, "10.99.0.11", "n1");
  await handler.upsert("10.200.1.5", 701, "10.99.0.11", "n1");
  expect(datapath.ipcache.get("10.200.1.5/32")).toBe(701);
  expect(ingressAllows(db.id)).toEqual([]);
  expect(policy.identity(700)).toBeUndefined();
  expect(policy.identity(701)?.labels).toEqual(["unspec:app=other"]);
});
