/**
 * Identities and policy in the agent, with the recording fake datapath: what reaches the
 * "kernel" (each endpoint's policy, the ipcache) and in which order, revisions, persistence and
 * restore, failing closed when the policy map is full, label changes, CIDR identities.
 * Expected entries are written out by hand.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EndpointChangeRequest } from "../../src/agent/api/types.ts";
import type { EnforcementMode } from "../../src/agent/config.ts";
import { EndpointManager } from "../../src/agent/endpoint/manager.ts";
import { Serial } from "../../src/agent/endpoint/serial.ts";
import { EndpointStore } from "../../src/agent/endpoint/store.ts";
import { AgentError } from "../../src/agent/errors.ts";
import { HealthProblems } from "../../src/agent/health.ts";
import { Ipam } from "../../src/agent/ipam/index.ts";
import { datapathPolicy } from "../../src/agent/policy/datapath-policy.ts";
import { PolicyImportError, PolicyManager } from "../../src/agent/policy/manager.ts";
import { EmbeddedIdentityBackend } from "../../src/kvstore/embedded-identities.ts";
import { LabelSet } from "../../src/identity/labels.ts";
import type { PolicyEntry } from "../../src/policy/map-state.ts";
import { parseCidr } from "../../src/net/ipv4.ts";
import { RecordingDatapath, quietLogger } from "../helpers/agent-fake-datapath.ts";

const TCP = 6;
const UDP = 17;
const LOCAL = 1 << 24;

let dir: string;
let datapath: RecordingDatapath;
let agent: Agent;

interface Agent {
  ipam: Ipam;
  health: HealthProblems;
  policy: PolicyManager;
  endpoints: EndpointManager;
  backend: EmbeddedIdentityBackend;
}

/** The agent's policy and endpoint parts over `dir`, restored as the daemon does. */
async function openAgent(options: { enforcement?: EnforcementMode; allowLocalhost?: boolean } = {}): Promise<Agent> {
  const ipam = Ipam.open(parseCidr("10.200.0.0/24"), dir);
  const health = new HealthProblems();
  const serial = new Serial();
  const backend = EmbeddedIdentityBackend.open(dir);
  const policy = new PolicyManager({
    datapath,
    stateDir: dir,
    enforcement: options.enforcement ?? "default",
    allowLocalhost: options.allowLocalhost ?? false,
    identityBackend: backend,
    serial,
    log: quietLogger()("policy"),
  });
  await policy.start();
  const endpoints = new EndpointManager({ ipam, datapath, store: new EndpointStore(dir), health, log: quietLogger()("endpoint-manager"), policy, serial });
  await endpoints.restore();
  await policy.finishRestore();
  return { ipam, health, policy, endpoints, backend };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "agent-policy-"));
  datapath = new RecordingDatapath();
  agent = await openAgent();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function request(containerId: string, namespace: string, labels: string[]): EndpointChangeRequest {
  const ip = agent.ipam.allocate(`${containerId}:eth0`);
  return {
    "container-id": containerId,
    "container-interface-name": "eth0",
    "interface-name": `lxc${containerId}`,
    "interface-index": 10,
    mac: "0a:58:0a:c8:00:05",
    "host-mac": "0a:58:0a:c8:00:01",
    addressing: { ipv4: ip },
    "k8s-namespace": namespace,
    labels,
  };
}

async function pod(name: string, namespace: string, labels: string[]) {
  return agent.endpoints.create(`cni-attachment-id:${name}:eth0`, request(name, namespace, labels));
}

/** "ingress 256 TCP/80/16 allow": one entry of an endpoint's policy in the fake kernel. */
function entries(endpointId: number): string[] {
  const policy = datapath.policies.get(endpointId);
  if (!policy) return [];
  return policy.entries.map((e) => `${e.direction} ${e.identity} ${e.protocol}/${e.port}/${e.prefixLength} ${e.deny ? "deny" : "allow"}`).sort();
}

function enforcement(endpointId: number): string {
  const policy = datapath.policies.get(endpointId);
  return policy ? `ingress ${policy.ingressEnforced ? "on" : "off"}, egress ${policy.egressEnforced ? "on" : "off"}` : "none";
}

async function failure(promise: Promise<unknown>): Promise<AgentError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AgentError) return error;
    throw error;
  }
  throw new Error("did not fail");
}

const ALLOW_WEB_TO_DB = JSON.stringify({
  apiVersion: "cilium.io/v2",
  kind: "CiliumNetworkPolicy",
  metadata: { name: "db", namespace: "shop" },
  spec: {
    endpointSelector: { matchLabels: { app: "db" } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: "web" } }], toPorts: [{ ports: [{ port: "5432", protocol: "TCP" }] }] }],
  },
});

describe("the datapath's view of a resolved state", () => {
  const e = (direction: "ingress" | "egress", identity: number, protocol: number, port: number, prefixLength: number, deny = false): PolicyEntry => ({
    direction,
    identity,
    protocol,
    port,
    prefixLength,
    deny,
  });
  const state = (...list: PolicyEntry[]) => new Map(list.map((x, i) => [String(i), x]));

  test("a direction holding only the allow-all entry is not enforced and writes nothing", () => {
    expect(datapathPolicy(state(e("ingress", 0, 0, 0, 0), e("egress", 0, 0, 0, 0)))).toEqual({ ingressEnforced: false, egressEnforced: false, entries: [] });
  });

  test("anything else is enforced with every entry, the allow-all and denies included", () => {
    const policy = datapathPolicy(state(e("ingress", 0, 0, 0, 0), e("ingress", 300, 0, 0, 0, true), e("egress", 0, 0, 0, 0)));
    expect(policy).toEqual({
      ingressEnforced: true,
      egressEnforced: false,
      entries: [
        { direction: "ingress", identity: 0, protocol: 0, port: 0, prefixLength: 0, deny: false },
        { direction: "ingress", identity: 300, protocol: 0, port: 0, prefixLength: 0, deny: true },
      ],
    });
  });

  test("an allow of one identity only is enforced; no entry at all is enforced and denies everything", () => {
    expect(datapathPolicy(state(e("ingress", 256, TCP, 80, 16)))).toEqual({
      ingressEnforced: true,
      egressEnforced: true,
      entries: [{ direction: "ingress", identity: 256, protocol: TCP, port: 80, prefixLength: 16, deny: false }],
    });
    // An allow-all of one identity (not identity 0) is not "everything".
    expect(datapathPolicy(state(e("egress", 256, 0, 0, 0), e("ingress", 0, 0, 0, 0))).egressEnforced).toBe(true);
  });
});

describe("endpoint identities", () => {
  test("labels get identities from 256; the same labels the same identity; the namespace is part of them", async () => {
    const web1 = await pod("web1", "shop", ["app=web"]);
    const web2 = await pod("web2", "shop", ["app=web"]);
    const db = await pod("db", "shop", ["app=db"]);
    const other = await pod("web3", "billing", ["app=web"]);
    expect([web1.identity, web2.identity, db.identity, other.identity]).toEqual([256, 256, 257, 258]);
    expect(agent.policy.identity(256)).toEqual({ id: 256, labels: ["k8s:io.kubernetes.pod.namespace=shop", "unspec:app=web"] });
    expect(web1.state).toBe("ready");
  });

  test("identity, policy and ipcache are written before the endpoint is applied, with its enforcement", async () => {
    datapath.sequence.length = 0;
    const web = await pod("web", "shop", ["app=web"]);
    expect(datapath.sequence).toEqual([`setEndpointPolicy ${web.id}`, `upsertIpcache ${web.addressing.ipv4}/32 256`, `applyEndpoint ${web.id}`]);
    expect(datapath.appliedEnforcement.get(web.id)).toEqual({ ingress: false, egress: false });
    expect(web.policy).toEqual({ "realized-revision": 1, "ingress-enforced": false, "egress-enforced": false });
  });

  test("a new pod that a policy selects is enforced from its first packet", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    const web = await pod("web", "shop", ["app=web"]);
    datapath.sequence.length = 0;
    const db = await pod("db", "shop", ["app=db"]);
    expect(datapath.sequence.indexOf(`setEndpointPolicy ${db.id}`)).toBeLessThan(datapath.sequence.indexOf(`applyEndpoint ${db.id}`));
    expect(datapath.appliedEnforcement.get(db.id)).toEqual({ ingress: true, egress: false });
    expect(entries(db.id)).toEqual([`ingress ${web.identity} 6/5432/16 allow`]);
  });

  test("a new identity is in the others' policy before its address maps to it", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    const db = await pod("db", "shop", ["app=db"]);
    expect(entries(db.id)).toEqual([]);
    expect(enforcement(db.id)).toBe("ingress on, egress off");
    datapath.sequence.length = 0;
    const web = await pod("web", "shop", ["app=web"]);
    expect(datapath.sequence).toEqual([
      `setEndpointPolicy ${db.id}`,
      `setEndpointPolicy ${web.id}`,
      `upsertIpcache ${web.addressing.ipv4}/32 ${web.identity}`,
      `applyEndpoint ${web.id}`,
    ]);
    expect(entries(db.id)).toEqual([`ingress ${web.identity} 6/5432/16 allow`]);
  });

  test("deleting the last pod of an identity: its address leaves the ipcache, then every policy", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    const db = await pod("db", "shop", ["app=db"]);
    const web = await pod("web", "shop", ["app=web"]);
    datapath.sequence.length = 0;
    await agent.endpoints.delete(String(web.id));
    expect(datapath.sequence).toEqual([`removeEndpoint ${web.id}`, `deleteIpcache ${web.addressing.ipv4}/32`, `setEndpointPolicy ${db.id}`]);
    expect(entries(db.id)).toEqual([]);
    expect(agent.policy.identity(web.identity!)).toBeUndefined();
    expect(datapath.ipcacheEntries()).toEqual([`${db.addressing.ipv4}/32 ${db.identity}`]);
  });

  test("labels that cannot form an identity are refused, naming them, and nothing remains", async () => {
    const error = await failure(pod("bad", "shop", ["reserved:host"]));
    expect(error.kind).toBe("invalid");
    expect(error.message).toContain("reserved:host: the reserved source is for the agent's own identities");
    expect(agent.endpoints.list()).toEqual([]);
    expect(datapath.ipcache.size).toBe(0);
  });
});

describe("policy revisions", () => {
  test("import, delete by labels and delete all move the revision; every endpoint realizes it", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    const db = await pod("db", "shop", ["app=db"]);
    expect(agent.policy.revision).toBe(1);
    expect(await agent.policy.importPolicy(ALLOW_WEB_TO_DB)).toEqual({ revision: 2 });
    const bare = JSON.stringify([{ endpointSelector: { matchLabels: { app: "web" } }, egress: [{ toEntities: ["world"] }], labels: ["team=a"] }]);
    expect(await agent.policy.importPolicy(bare)).toEqual({ revision: 3 });
    expect(agent.endpoints.get(String(web.id)).policy).toMatchObject({ "realized-revision": 3, "egress-enforced": true });
    expect(agent.endpoints.get(String(db.id)).policy).toMatchObject({ "realized-revision": 3, "ingress-enforced": true });
    expect(entries(web.id)).toEqual(["egress 2 0/0/0 allow"]);

    expect(await agent.policy.deletePolicy({ labels: ["team=a"] })).toEqual({ revision: 4, deleted: 1 });
    expect(enforcement(web.id)).toBe("ingress off, egress off");
    expect(agent.policy.policy().policy).toHaveLength(1);
    expect((await failure(agent.policy.deletePolicy({ labels: ["team=a"] }))).kind).toBe("not-found");
    expect(agent.policy.revision).toBe(4);

    expect(await agent.policy.deletePolicy({ all: true })).toEqual({ revision: 5, deleted: 1 });
    expect(enforcement(db.id)).toBe("ingress off, egress off");
    expect(agent.endpoints.get(String(db.id)).policy?.["realized-revision"]).toBe(5);
  });

  test("an endpoint whose policy a change leaves alone is not rewritten, yet realizes the revision", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    const db = await pod("db", "shop", ["app=db"]);
    datapath.sequence.length = 0;
    const { revision } = await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    expect(datapath.sequence).toEqual([`setEndpointPolicy ${db.id}`]);
    expect(agent.endpoints.get(String(web.id)).policy?.["realized-revision"]).toBe(revision);
  });

  test("an invalid import changes nothing and names every bad field", async () => {
    const db = await pod("db", "shop", ["app=db"]);
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    const before = { policy: agent.policy.policy(), kernel: entries(db.id), enforcement: enforcement(db.id) };
    const bad = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: bad }
spec:
  endpointSelector: {}
  ingress:
    - fromEndpoints: [{}]
      toPorts: [{ ports: [{ port: "99999", protocol: TCP }] }]
  egress:
    - toCIDR: ["10.0.0.1/8"]
`;
    const error = await failure(agent.policy.importPolicy(bad));
    expect(error.kind).toBe("invalid");
    expect(error).toBeInstanceOf(PolicyImportError);
    expect((error as PolicyImportError).issues).toEqual([
      "spec.ingress[0].toPorts[0].ports[0].port: must be 0-65535, not string \"99999\"",
      expect.stringMatching(/^spec\.egress\[0\]\.toCIDR\[0\]: /),
    ]);
    expect({ policy: agent.policy.policy(), kernel: entries(db.id), enforcement: enforcement(db.id) }).toEqual(before);
  });

  test("replace and replace-with-labels swap rules in one revision", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    const changed = ALLOW_WEB_TO_DB.replace('"5432"', '"5433"');
    expect(await agent.policy.importPolicy(changed, { replace: true })).toEqual({ revision: 3 });
    const rules = agent.policy.policy().policy;
    expect(rules).toHaveLength(1);
    expect(JSON.stringify(rules[0])).toContain('"port":"5433"');
    expect(await agent.policy.importPolicy(ALLOW_WEB_TO_DB, { replaceWithLabels: ["k8s:io.cilium.k8s.policy.name=db"] })).toEqual({ revision: 4 });
    expect(agent.policy.policy().policy).toHaveLength(1);
  });
});

describe("repository changes are incremental", () => {
  const rule = (name: string, spec: object) => JSON.stringify({ apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy", metadata: { name, namespace: "shop" }, spec });
  const DB_FROM_WEB = (port: string) =>
    rule("db", { endpointSelector: { matchLabels: { app: "db" } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: "web" } }], toPorts: [{ ports: [{ port, protocol: "TCP" }] }] }] });
  const CACHE_FROM_WEB = rule("cache", {
    endpointSelector: { matchLabels: { app: "cache" } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: "web" } }], toPorts: [{ ports: [{ port: "6379", protocol: "TCP" }] }] }],
  });

  test("a change to one rule resolves and writes only the endpoints it selects; the others realize the revision unwritten", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    const db1 = await pod("db1", "shop", ["app=db"]);
    const db2 = await pod("db2", "shop", ["app=db"]);
    const cache = await pod("cache", "shop", ["app=cache"]);
    await agent.policy.importPolicy(DB_FROM_WEB("5432"));
    expect(agent.policy.lastChangeEffect.resolved).toEqual([db1.id, db2.id]);
    await agent.policy.importPolicy(CACHE_FROM_WEB);
    expect(agent.policy.lastChangeEffect).toMatchObject({ resolved: [cache.id], written: [cache.id] });

    // Rule "db" changes port: web (its peer) and cache (selected by another rule) are left alone.
    datapath.sequence.length = 0;
    const { revision } = await agent.policy.importPolicy(DB_FROM_WEB("5433"), { replace: true });
    expect(agent.policy.lastChangeEffect).toEqual({ revision, resolved: [db1.id, db2.id], written: [db1.id, db2.id] });
    expect(datapath.sequence).toEqual([`setEndpointPolicy ${db1.id}`, `setEndpointPolicy ${db2.id}`]);
    expect(entries(db1.id)).toEqual([`ingress ${web.identity} 6/5433/16 allow`]);
    expect(entries(cache.id)).toEqual([`ingress ${web.identity} 6/6379/16 allow`]);
    for (const id of [web.id, db1.id, db2.id, cache.id]) expect(agent.endpoints.get(String(id)).policy?.["realized-revision"]).toBe(revision);

    // Deleting "cache" concerns the cache pod only.
    await agent.policy.deletePolicy({ labels: ["k8s:io.cilium.k8s.policy.name=cache"] });
    expect(agent.policy.lastChangeEffect).toMatchObject({ resolved: [cache.id], written: [cache.id] });
    expect(enforcement(cache.id)).toBe("ingress off, egress off");
    expect(entries(db2.id)).toEqual([`ingress ${web.identity} 6/5433/16 allow`]);

    // Re-importing the same text is a new rule object: the endpoints it selects are resolved again, nothing changes for them.
    await agent.policy.importPolicy(DB_FROM_WEB("5433"), { replace: true });
    expect(agent.policy.lastChangeEffect).toMatchObject({ resolved: [db1.id, db2.id], written: [] });
  });

  test("an endpoint unconcerned by a change still takes the CIDR identities it brings (world includes them), and loses them with it", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    const db = await pod("db", "shop", ["app=db"]);
    await agent.policy.importPolicy(JSON.stringify([{ endpointSelector: { matchLabels: { app: "web" } }, egress: [{ toEntities: ["world"] }], labels: ["w=1"] }]));
    expect(entries(web.id)).toEqual(["egress 2 0/0/0 allow"]);

    await agent.policy.importPolicy(JSON.stringify([{ endpointSelector: { matchLabels: { app: "db" } }, egress: [{ toCIDR: ["192.168.0.0/16"] }], labels: ["c=1"] }]));
    expect(agent.policy.lastChangeEffect).toMatchObject({ resolved: [db.id], written: [db.id, web.id].sort((a, b) => a - b) });
    expect(entries(db.id)).toEqual([`egress ${LOCAL | 1} 0/0/0 allow`]);
    expect(entries(web.id)).toEqual([`egress ${LOCAL | 1} 0/0/0 allow`, "egress 2 0/0/0 allow"]);

    await agent.policy.deletePolicy({ labels: ["c=1"] });
    expect(entries(web.id)).toEqual(["egress 2 0/0/0 allow"]);
    expect(enforcement(db.id)).toBe("ingress off, egress off");
  });

  test("an endpoint whose write failed is retried by a change that does not concern it", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    const db = await pod("db", "shop", ["app=db"]);
    datapath.failures.set("setEndpointPolicy", "map full");
    await agent.policy.importPolicy(DB_FROM_WEB("5432"));
    expect(agent.endpoints.get(String(db.id)).policy?.error).toContain("map full");
    datapath.failures.delete("setEndpointPolicy");
    await agent.policy.importPolicy(CACHE_FROM_WEB);
    expect(agent.policy.lastChangeEffect).toMatchObject({ resolved: [], written: [db.id] });
    expect(agent.endpoints.get(String(db.id)).policy?.error).toBeUndefined();
    expect(entries(db.id)).toEqual([`ingress ${web.identity} 6/5432/16 allow`]);
  });
});

describe("enforcement modes", () => {
  test("always: every endpoint enforced, nothing allowed without a rule; never: nothing enforced, not even denies", async () => {
    agent = await openAgent({ enforcement: "always" });
    const a = await pod("a", "shop", ["app=a"]);
    expect(enforcement(a.id)).toBe("ingress on, egress on");
    expect(entries(a.id)).toEqual([]);

    rmSync(dir, { recursive: true, force: true });
    datapath = new RecordingDatapath();
    agent = await openAgent({ enforcement: "never" });
    const b = await pod("b", "shop", ["app=b"]);
    await agent.policy.importPolicy(JSON.stringify([{ endpointSelector: {}, ingressDeny: [{ fromEntities: ["world"] }], labels: ["x=y"] }]));
    expect(enforcement(b.id)).toBe("ingress off, egress off");
  });

  test("a deny-only rule without default deny: enforced, allow-all plus the deny", async () => {
    const a = await pod("a", "shop", ["app=a"]);
    await agent.policy.importPolicy(JSON.stringify([{ endpointSelector: {}, ingressDeny: [{ fromEntities: ["world"] }], enableDefaultDeny: { ingress: false }, labels: ["x=y"] }]));
    expect(enforcement(a.id)).toBe("ingress on, egress off");
    expect(entries(a.id)).toEqual(["ingress 0 0/0/0 allow", "ingress 2 0/0/0 deny"]);
  });
});

describe("failing closed", () => {
  test("a policy the map cannot hold: the endpoint is not-ready and the agent degraded, until it fits", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    const db = await pod("db", "shop", ["app=db"]);
    datapath.policyLimit = 2;
    const ports = Array.from({ length: 5 }, (_, i) => ({ port: String(6000 + i * 2), protocol: "TCP" }));
    const big = JSON.stringify([
      { endpointSelector: { matchLabels: { app: "db" } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: "web" } }], toPorts: [{ ports }] }], labels: ["big=1"] },
    ]);
    const { revision } = await agent.policy.importPolicy(big);
    const failed = agent.endpoints.get(String(db.id));
    expect(failed.state).toBe("not-ready");
    expect(failed.policy?.["realized-revision"]).toBe(1);
    expect(failed.policy?.error).toContain("could not be written, so it fails closed");
    expect(agent.health.list()).toEqual([expect.stringMatching(new RegExp(`^endpoint ${db.id} policy: its policy \\(5 entries\\) could not be written`))]);
    // What the fake kernel holds: enforced, none of the new allows.
    expect(enforcement(db.id)).toBe("ingress on, egress off");
    expect(entries(db.id)).toEqual([]);
    expect(agent.endpoints.get(String(web.id)).policy?.["realized-revision"]).toBe(revision);

    datapath.policyLimit = 10;
    // Any later change retries it: here a new pod's identity.
    await pod("web2", "shop", ["app=web", "v=2"]);
    expect(agent.endpoints.get(String(db.id))).toMatchObject({ state: "ready", policy: { "realized-revision": revision } });
    expect(entries(db.id)).toHaveLength(5 * 2);
    expect(agent.health.list()).toEqual([]);
  });

  test("a new endpoint whose policy does not fit is created not-ready, failing closed", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    await pod("web", "shop", ["app=web"]);
    datapath.policyLimit = 0;
    const db = await pod("db", "shop", ["app=db"]);
    expect(db.state).toBe("not-ready");
    expect(datapath.appliedEnforcement.get(db.id)).toEqual({ ingress: true, egress: false });
    expect(entries(db.id)).toEqual([]);
  });
});

describe("label changes", () => {
  test("a new identity, the endpoint's own policy and the others' follow; the old identity goes", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    const db = await pod("db", "shop", ["app=db"]);
    const web = await pod("web", "shop", ["app=web"]);
    const other = await pod("other", "shop", ["app=other"]);
    expect(entries(db.id)).toEqual([`ingress ${web.identity} 6/5432/16 allow`]);

    const moved = await agent.endpoints.updateLabels(String(web.id), { delete: ["app"], add: ["app=batch"] });
    expect(moved.labels).toEqual(["k8s:io.kubernetes.pod.namespace=shop", "unspec:app=batch"]);
    expect(moved.identity).toBe(259);
    expect(moved.state).toBe("ready");
    expect(entries(db.id)).toEqual([]);
    expect(datapath.ipcache.get(`${web.addressing.ipv4}/32`)).toBe(259);
    expect(datapath.programmed.get(web.id)?.identity).toBe(259);
    expect(agent.policy.identity(web.identity!)).toBeUndefined();

    const joined = await agent.endpoints.updateLabels(String(other.id), { add: ["app=web"] });
    expect(entries(db.id)).toEqual([`ingress ${joined.identity} 6/5432/16 allow`]);

    const dbAsWeb = await agent.endpoints.updateLabels(String(db.id), { add: ["app=web"] });
    expect(dbAsWeb.identity).toBe(joined.identity);
    expect(enforcement(db.id)).toBe("ingress off, egress off");
  });

  test("bad changes are refused naming the entry; the namespace label stays", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    expect((await failure(agent.endpoints.updateLabels(String(web.id), { delete: ["tier"] }))).message).toBe('delete[0] "tier": the endpoint has no such label');
    expect((await failure(agent.endpoints.updateLabels(String(web.id), { delete: ["io.kubernetes.pod.namespace"] }))).message).toContain("comes from the endpoint's k8s-namespace");
    expect((await failure(agent.endpoints.updateLabels(String(web.id), { add: ["a b=c"] }))).kind).toBe("invalid");
    expect((await failure(agent.endpoints.updateLabels("99", { add: ["a=b"] }))).kind).toBe("not-found");
    expect(agent.endpoints.get(String(web.id)).identity).toBe(256);
  });
});

describe("CIDR identities", () => {
  const CIDR_POLICY = JSON.stringify([
    {
      endpointSelector: { matchLabels: { app: "web" } },
      egress: [{ toCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.96.0.0/12"] }], toPorts: [{ ports: [{ port: "53", protocol: "UDP" }] }] }],
      labels: ["cidr=1"],
    },
  ]);

  test("each prefix and except gets a local identity and an ipcache entry; the except is not allowed", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    await agent.policy.importPolicy(CIDR_POLICY);
    expect(datapath.ipcacheEntries()).toEqual([`10.0.0.0/8 ${LOCAL | 1}`, `10.200.0.2/32 256`, `10.96.0.0/12 ${LOCAL | 2}`]);
    expect(entries(web.id)).toEqual([`egress ${LOCAL | 1} ${UDP}/53/16 allow`]);
    expect(agent.policy.identity(LOCAL | 2)?.labels).toContain("cidr:10.96.0.0/12");
    // The CIDR identities are in the policy before their prefixes are in the ipcache.
    const seq = datapath.sequence;
    expect(seq.indexOf(`setEndpointPolicy ${web.id}`, seq.indexOf(`applyEndpoint ${web.id}`))).toBeLessThan(seq.indexOf(`upsertIpcache 10.0.0.0/8 ${LOCAL | 1}`));

    await agent.policy.deletePolicy({ all: true });
    expect(datapath.ipcacheEntries()).toEqual([`10.200.0.2/32 256`]);
    expect(agent.policy.identity(LOCAL | 1)).toBeUndefined();
  });

  test("after a restart prefixes keep the numbers the kernel has; new prefixes get higher ones", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    await agent.policy.importPolicy(JSON.stringify([{ endpointSelector: {}, egress: [{ toCIDR: ["192.168.1.0/24"] }], labels: ["p=a"] }]));
    await agent.policy.importPolicy(JSON.stringify([{ endpointSelector: {}, egress: [{ toCIDR: ["172.16.0.0/16"] }], labels: ["p=b"] }]));
    await agent.policy.deletePolicy({ labels: ["p=a"] });
    expect(datapath.ipcacheEntries()).toEqual([`10.200.0.2/32 256`, `172.16.0.0/16 ${LOCAL | 2}`]);

    agent = await openAgent();
    expect(datapath.ipcacheEntries()).toEqual([`10.200.0.2/32 256`, `172.16.0.0/16 ${LOCAL | 2}`]);
    expect(entries(web.id)).toEqual([`egress ${LOCAL | 2} 0/0/0 allow`]);
    await agent.policy.importPolicy(JSON.stringify([{ endpointSelector: {}, egress: [{ toCIDR: ["192.168.1.0/24"] }], labels: ["p=a"] }]));
    expect(datapath.ipcache.get("192.168.1.0/24")).toBe(LOCAL | 3);
  });

  test("a prefix the kernel has that no rule names any more keeps its meaning until every endpoint is re-written", async () => {
    const web = await pod("web", "shop", ["app=web"]);
    // A previous run's leftover: 10.1.0.0/16 with a CIDR identity, denied to web.
    datapath.ipcache.set("10.1.0.0/16", LOCAL | 7);
    writeFileSync(
      join(dir, "policy.json"),
      JSON.stringify({ version: 1, revision: 9, rules: [{ endpointSelector: {}, egressDeny: [{ toEntities: ["world"] }], enableDefaultDeny: { egress: false }, labels: ["w=1"] }] }),
    );
    datapath.sequence.length = 0;
    datapath.written.length = 0;
    agent = await openAgent();
    expect(agent.policy.revision).toBe(9);
    // Re-written while the leftover was known (so it was denied as world), then cleaned up.
    const rule = (e: { direction: string; identity: number; deny: boolean }) => `${e.direction} ${e.identity} ${e.deny ? "deny" : "allow"}`;
    expect(datapath.written.map((w) => `${w.endpointId}: ${w.policy.entries.map(rule).sort().join(", ")}`)).toEqual([
      `${web.id}: egress 0 allow, egress ${LOCAL | 7} deny, egress 2 deny`,
      `${web.id}: egress 0 allow, egress 2 deny`,
    ]);
    expect(datapath.sequence).toEqual([
      "setEndpointPolicy 1",
      "upsertIpcache 10.200.0.2/32 256",
      "applyEndpoint 1",
      "removeStaleEndpoints 1",
      "deleteIpcache 10.1.0.0/16",
      "setEndpointPolicy 1",
    ]);
    expect(datapath.ipcache.has("10.1.0.0/16")).toBe(false);
    expect(entries(web.id)).toEqual(["egress 0 0/0/0 allow", "egress 2 0/0/0 deny"]);
  });
});

describe("persistence and restore", () => {
  test("rules, revision and identity numbers survive a restart; the kernel's policy converges unchanged", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    const db = await pod("db", "shop", ["app=db"]);
    const gone = await pod("gone", "shop", ["app=gone"]);
    const web = await pod("web", "shop", ["app=web"]);
    const before = { db: entries(db.id), web: entries(web.id), policy: agent.policy.policy() };
    expect(JSON.parse(readFileSync(join(dir, "policy.json"), "utf8"))).toMatchObject({ version: 1, revision: 2 });
    // "gone"'s state file vanishes while the agent is down: its identity is freed on restore.
    rmSync(join(dir, "endpoints", `${gone.id}.json`));

    datapath = new RecordingDatapath();
    // The kernel kept db's policy, here emptied: the restored agent converges it back.
    datapath.policies.set(db.id, { ingressEnforced: true, egressEnforced: false, entries: [] });
    agent = await openAgent();
    expect(agent.policy.policy()).toEqual(before.policy);
    expect(agent.endpoints.get(String(web.id)).identity).toBe(web.identity);
    expect(agent.endpoints.get(String(db.id))).toMatchObject({ identity: db.identity, state: "ready", policy: { "realized-revision": 2 } });
    expect({ db: entries(db.id), web: entries(web.id) }).toEqual({ db: before.db, web: before.web });
    expect(agent.backend.list().map((i) => i.id)).toEqual([db.identity!, web.identity!]);
    // Each restored endpoint was written once, after every identity was known.
    expect(datapath.sequence.filter((c) => c.startsWith("setEndpointPolicy"))).toEqual([`setEndpointPolicy ${db.id}`, `setEndpointPolicy ${web.id}`]);
    // A new label set gets a fresh number, not the freed one.
    expect((await pod("new", "shop", ["app=new"])).identity).toBe(259);
  });

  test("an unreadable policy file stops the agent instead of starting open", async () => {
    writeFileSync(join(dir, "policy.json"), '{"version": 1, "revision": 3, "rules": [{"endpointSelector": {}, "bogus": 1}]}');
    await expect(openAgent()).rejects.toThrow(/cannot restore the policy from .*policy\.json: .*bogus: unknown field/);
  });
});

describe("trace and identities", () => {
  test("trace answers from labels; identities list the reserved ones and the endpoints'", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    await pod("web", "shop", ["app=web"]);
    const labels = (...l: string[]) => LabelSet.parse(l);
    const ns = "k8s:io.kubernetes.pod.namespace=shop";
    const allowed = agent.policy.trace({ from: labels(ns, "app=web"), to: labels(ns, "app=db"), protocol: TCP, port: 5432 });
    expect(allowed.verdict).toBe("allowed");
    expect(allowed.ingress.decidingRules).toEqual(["shop/db"]);
    expect(agent.policy.trace({ from: labels(ns, "app=web"), to: labels(ns, "app=db"), protocol: TCP, port: 80 }).verdict).toBe("denied");
    expect(agent.policy.identities().map((i) => i.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 256]);
  });
});

describe("the embedded identity backend", () => {
  test("same labels same number, from 256, persisted; unreferenced numbers collected after a restart", async () => {
    const store = mkdtempSync(join(tmpdir(), "identities-"));
    try {
      const backend = EmbeddedIdentityBackend.open(store);
      const a = LabelSet.parse(["k8s:app=a"]);
      const b = LabelSet.parse(["k8s:app=b"]);
      expect(await backend.allocate(a)).toBe(256);
      expect(await backend.allocate(b)).toBe(257);
      expect(await backend.allocate(a)).toBe(256);
      await backend.release(257);
      expect(await backend.lookup(257)).toBeUndefined();
      expect(await backend.allocate(LabelSet.parse(["k8s:app=c"]))).toBe(258);

      const again = EmbeddedIdentityBackend.open(store);
      expect((await again.lookup(256))?.toString()).toBe("k8s:app=a");
      expect(await again.allocate(a)).toBe(256);
      expect(again.collectUnreferenced()).toEqual([258]);
      expect(await again.allocate(b)).toBe(259);
      expect(() => {
        writeFileSync(join(store, "identities.json"), '{"version":1,"next":256,"identities":{"256":["k8s:a=1"],"257":["k8s:a=1"]}}');
        EmbeddedIdentityBackend.open(store);
      }).toThrow("identities 256 and 257 have the same labels");
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});

describe("rules in their JSON form", () => {
  const inputs: Record<string, string> = {
    "CiliumNetworkPolicy with expressions, ports, ranges, ICMP, denies": `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: web, namespace: shop }
specs:
  - description: web in
    endpointSelector:
      matchLabels: { app: web }
      matchExpressions: [{ key: k8s:tier, operator: NotIn, values: [a, b] }, { key: env, operator: Exists }]
    ingress:
      - fromEndpoints: [{ matchLabels: { app: lb } }, {}]
        toPorts: [{ ports: [{ port: "80", protocol: TCP }, { port: "8000", endPort: 8010, protocol: ANY }] }]
      - icmps: [{ fields: [{ type: EchoRequest }, { type: 0, family: IPv4 }] }]
      - fromEndpoints: []
    ingressDeny:
      - fromCIDRSet: [{ cidr: 10.0.0.0/8, except: [10.1.0.0/16] }]
    egress:
      - toEntities: [world, cluster]
      - toCIDR: [192.168.0.1, 172.16.0.0/12]
        toPorts: [{ ports: [{ port: "0", protocol: UDP }] }]
    egressDeny:
      - toPorts: [{ ports: [{ port: "25" }] }]
    labels: [team=a, "k8s:x=y"]
  - endpointSelector: { matchLabels: { "reserved:init": "" } }
    ingress: [{ fromEntities: [all] }]
`,
    CiliumClusterwideNetworkPolicy: `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: { name: all }
spec:
  endpointSelector: {}
  enableDefaultDeny: { ingress: false }
  ingress: [{ fromEndpoints: [{ matchLabels: { app: x } }] }]
`,
    NetworkPolicy: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: np, namespace: shop, uid: "1234" }
spec:
  podSelector: { matchLabels: { app: db } }
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector: { matchLabels: { app: web } }
        - namespaceSelector: { matchLabels: { team: a } }
          podSelector: { matchExpressions: [{ key: role, operator: In, values: [x, y] }] }
        - namespaceSelector: {}
        - ipBlock: { cidr: 10.0.0.0/8, except: [10.9.0.0/16] }
      ports: [{ port: 5432 }, { protocol: UDP, port: 1000, endPort: 1100 }, { protocol: SCTP }]
    - {}
`,
  };

  for (const [name, text] of Object.entries(inputs)) {
    test(`${name}: exported, imported again, the same rules`, async () => {
      await agent.policy.importPolicy(text);
      const exported = agent.policy.policy();
      await agent.policy.deletePolicy({ all: true });
      await agent.policy.importPolicy(JSON.stringify(exported.policy));
      expect(agent.policy.policy().policy).toEqual(exported.policy);
    });
  }

  test("a CiliumNetworkPolicy's namespace scoping and derived labels are written out", async () => {
    await agent.policy.importPolicy(ALLOW_WEB_TO_DB);
    expect(agent.policy.policy().policy).toEqual([
      {
        endpointSelector: { matchLabels: { "any:app": "db", "k8s:io.kubernetes.pod.namespace": "shop" } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { "any:app": "web", "k8s:io.kubernetes.pod.namespace": "shop" } }],
            toPorts: [{ ports: [{ port: "5432", protocol: "TCP" }] }],
          },
        ],
        enableDefaultDeny: { ingress: true, egress: false },
        labels: [
          "k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy",
          "k8s:io.cilium.k8s.policy.name=db",
          "k8s:io.cilium.k8s.policy.namespace=shop",
        ],
      },
    ]);
  });
});
