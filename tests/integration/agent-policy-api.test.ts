/**
 * Policy, identities and endpoint labels through the agent's API and the CLI, with the daemon in
 * this process over the recording fake datapath (no root): bodies validated with the fields
 * named, all-or-nothing imports, `cilium policy import|get|delete|wait|trace`, `cilium identity
 * list|get`, `cilium endpoint labels`, and the endpoint list's enforcement and identity columns.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentApiError, AgentClient } from "../../src/agent/api/client.ts";
import type { EndpointChangeRequest } from "../../src/agent/api/types.ts";
import { loadAgentConfig } from "../../src/agent/config-sources.ts";
import type { AgentConfig } from "../../src/agent/config.ts";
import { startDaemon, type Daemon } from "../../src/agent/daemon.ts";
import { RecordingDatapath, quietLogger } from "../helpers/agent-fake-datapath.ts";

const root = join(import.meta.dir, "../..");
let dir: string;
let config: AgentConfig;
let datapath: RecordingDatapath;
let daemon: Daemon | undefined;
let client: AgentClient;
let host: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "agent-policy-api-"));
  ({ config } = loadAgentConfig(
    {
      "node-name": "policy-node",
      "ipv4-range": "10.212.0.0/24",
      "state-dir": join(dir, "state"),
      "bpf-root": join(dir, "bpf"),
      "socket-path": join(dir, "cilium.sock"),
    },
    {},
  ));
  datapath = new RecordingDatapath();
  daemon = await startDaemon({ config, datapath, logger: quietLogger() });
  client = new AgentClient(config.socketPath, { timeoutMs: 5000 });
  host = `unix://${config.socketPath}`;
});

afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function createPod(name: string, namespace: string, labels: string[]) {
  const ip = (await client.allocateIp(`${name}:eth0`)).ipv4.ip;
  const request: EndpointChangeRequest = {
    "container-id": name,
    "container-interface-name": "eth0",
    "interface-name": `lxc${name}`,
    "interface-index": 7,
    mac: "0a:58:0a:d4:00:02",
    "host-mac": "0a:58:0a:d4:00:01",
    addressing: { ipv4: ip },
    "k8s-namespace": namespace,
    labels,
  };
  return client.putEndpoint(`cni-attachment-id:${name}:eth0`, request);
}

async function raw(method: string, path: string, body?: string) {
  const response = await fetch(`http://localhost${path}`, { method, body, unix: config.socketPath } as RequestInit);
  return { status: response.status, body: (await response.json()) as any };
}

async function cli(args: string[], stdin?: string) {
  const child = Bun.spawn([process.execPath, join(root, "src/main.ts"), ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" },
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

const DB_POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: db
  namespace: shop
spec:
  endpointSelector:
    matchLabels: { app: db }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: web } }]
      toPorts: [{ ports: [{ port: "5432", protocol: TCP }] }]
`;

describe("policy through the API", () => {
  let web: Awaited<ReturnType<typeof createPod>>;
  let db: Awaited<ReturnType<typeof createPod>>;

  beforeAll(async () => {
    web = await createPod("web", "shop", ["app=web"]);
    db = await createPod("db", "shop", ["app=db"]);
  });

  test("PUT imports YAML and answers the revision; GET has the rules; endpoints realize it", async () => {
    expect((await client.policy()).revision).toBe(1);
    expect(await client.putPolicy(DB_POLICY)).toEqual({ revision: 2 });
    const policy = await client.policy();
    expect(policy.revision).toBe(2);
    expect(policy.policy).toHaveLength(1);
    expect((await client.endpoint(db.id)).policy).toEqual({ "realized-revision": 2, "ingress-enforced": true, "egress-enforced": false });
    expect(datapath.policies.get(db.id)?.entries).toEqual([{ direction: "ingress", identity: web.identity!, protocol: 6, port: 5432, prefixLength: 16, deny: false }]);
  });

  test("an invalid import is 400 with every issue naming its field, and changes nothing", async () => {
    const before = await client.policy();
    const bad = await raw("PUT", "/v1/policy", JSON.stringify({ endpointSelector: { matchLabels: { app: 1 } }, ingress: [{ fromEndpoints: [{}], toPorts: [{ ports: [{ port: "http" }] }] }] }));
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe(400);
    expect(bad.body.issues).toEqual([
      "endpointSelector.matchLabels.app: must be a string, not number 1 (quote it)",
      'ingress[0].toPorts[0].ports[0].port: port name "http" is not supported yet: give the port number',
    ]);
    expect(bad.body.message).toStartWith("invalid policy: 2 problems: endpointSelector.matchLabels.app");
    expect((await raw("PUT", "/v1/policy", "")).body.message).toBe("the request body is empty: expected the policy (JSON or YAML)");
    expect((await raw("PUT", "/v1/policy", "a: [")).body.message).toStartWith("invalid policy: invalid YAML");
    expect(await client.policy()).toEqual(before);
  });

  test("DELETE by labels (JSON list) or ?all=true; bad bodies name the problem", async () => {
    expect((await raw("DELETE", "/v1/policy", "")).body.message).toBe(
      'the request body is empty: expected a JSON list of rule labels (["k8s:io.cilium.k8s.policy.name=web"]), or ?all=true to delete every rule',
    );
    expect((await raw("DELETE", "/v1/policy", '{"a":1}')).body.message).toStartWith("invalid list of rule labels: body:");
    expect((await raw("DELETE", "/v1/policy", '["k8s:io.cilium.k8s.policy.name=nope"]')).status).toBe(404);
    expect(await client.deletePolicy({ labels: ["k8s:io.cilium.k8s.policy.name=db"] })).toEqual({ revision: 3, deleted: 1 });
    expect(await client.deletePolicy({ all: true })).toEqual({ revision: 3, deleted: 0 });
    expect((await client.endpoint(db.id)).policy?.["ingress-enforced"]).toBe(false);
  });

  test("resolve traces by labels or endpoint; bad requests name the field", async () => {
    await client.putPolicy(DB_POLICY);
    const allowed = await client.tracePolicy({ from: { endpoint: web.id }, to: { endpoint: db.id }, dport: "5432/TCP" });
    expect(allowed).toMatchObject({ verdict: "allowed", protocol: "TCP", dport: 5432, ingress: { verdict: "allowed", "deciding-rules": ["shop/db"] } });
    const denied = await client.tracePolicy({ from: { labels: ["k8s:io.kubernetes.pod.namespace=shop", "app=web"] }, to: { endpoint: `ipv4:${db.addressing.ipv4}` }, dport: 80 });
    expect(denied).toMatchObject({ verdict: "denied", egress: { verdict: "allowed" }, ingress: { verdict: "denied" } });
    const udp = await client.tracePolicy({ from: { endpoint: web.id }, to: { endpoint: db.id }, dport: 5432, protocol: "udp" });
    expect(udp.verdict).toBe("denied");
    expect((await raw("POST", "/v1/policy/resolve", JSON.stringify({ from: { endpoint: 99 }, to: { labels: [] } }))).body).toEqual({ code: 404, message: "from.endpoint: endpoint 99 not found" });
    expect((await raw("POST", "/v1/policy/resolve", JSON.stringify({ from: { pod: "x" }, to: { labels: [] } }))).body.message).toStartWith("invalid policy trace request: from:");
    expect((await raw("POST", "/v1/policy/resolve", JSON.stringify({ from: { labels: [] }, to: { labels: [] }, dport: "80/XTP" }))).body.message).toBe(
      'protocol: "XTP" must be TCP, UDP, SCTP, ICMP or a protocol number',
    );
  });

  test("identities: the reserved ones and the endpoints'; one by number; 404 and 400", async () => {
    const identities = await client.identities();
    expect(identities.slice(0, 2)).toEqual([
      { id: 1, labels: ["reserved:host"] },
      { id: 2, labels: ["reserved:world"] },
    ]);
    expect(identities.map((i) => i.id)).toContain(web.identity!);
    expect(await client.identity(web.identity!)).toEqual({ id: web.identity!, labels: ["k8s:io.kubernetes.pod.namespace=shop", "unspec:app=web"] });
    expect((await raw("GET", "/v1/identity/4242")).body).toEqual({ code: 404, message: "identity 4242 not found" });
    expect((await raw("GET", "/v1/identity/abc")).status).toBe(400);
  });

  test("PATCH labels: identity and policy follow at once; bad bodies name the field", async () => {
    const changed = await client.patchEndpointLabels(web.id, { delete: ["app"], add: ["app=batch"] });
    expect(changed.identity).not.toBe(web.identity);
    expect(datapath.policies.get(db.id)?.entries).toEqual([]);
    expect((await raw("PATCH", `/v1/endpoint/${web.id}/labels`, JSON.stringify({ add: "x=y" }))).body.message).toBe(
      "invalid labels change: add: expected array, received string",
    );
    expect((await raw("PATCH", `/v1/endpoint/${web.id}/labels`, JSON.stringify({ remove: ["x"] }))).body.message).toStartWith("invalid labels change: body: unknown field(s) remove");
    expect((await raw("PATCH", `/v1/endpoint/${web.id}/labels`, "{}")).body.message).toBe("invalid labels change: body: give labels to add or delete");
    // web's old identity went with its last user: the labels get a fresh number, in db's policy at once.
    const back = await client.patchEndpointLabels(web.id, { add: ["app=web"], delete: ["app=batch"] });
    expect(back.identity).toBeGreaterThan(changed.identity!);
    expect(datapath.policies.get(db.id)?.entries).toEqual([{ direction: "ingress", identity: back.identity!, protocol: 6, port: 5432, prefixLength: 16, deny: false }]);
  });

  test("status reports the policy; a full map makes the agent Degraded with the endpoint named", async () => {
    // Two entries for db (two ports), room for one.
    datapath.policyLimit = 1;
    try {
      await client.putPolicy(DB_POLICY.replace('[{ port: "5432", protocol: TCP }]', '[{ port: "5432", protocol: TCP }, { port: "5433", protocol: TCP }]'), { replace: true });
      const status = await client.healthz();
      expect(status.cilium.state).toBe("Degraded");
      expect(status.problems).toEqual([expect.stringMatching(new RegExp(`^endpoint ${db.id} policy: its policy \\(2 entries\\) could not be written, so it fails closed`))]);
      expect(status.endpoints["by-state"]["not-ready"]).toEqual([db.id]);
    } finally {
      datapath.policyLimit = undefined;
    }
    await client.putPolicy(DB_POLICY, { replace: true });
    const fixed = await client.healthz();
    expect(fixed.cilium.state).toBe("Ok");
    expect(fixed.policy).toEqual({ revision: (await client.policy()).revision, rules: 1, enforcement: "default" });
  });
});

describe("the CLI", () => {
  test("policy import (file and stdin), get, delete print upstream's lines", async () => {
    const file = join(dir, "policy.yaml");
    writeFileSync(file, DB_POLICY.replace("name: db", "name: db2"));
    const before = (await client.policy()).revision;
    const imported = await cli(["policy", "import", file, "-H", host]);
    expect([imported.code, imported.stderr, imported.stdout]).toEqual([0, "", `Revision: ${before + 1}\n`]);
    const fromStdin = await cli(["policy", "import", "-", "-H", host], JSON.stringify([{ endpointSelector: {}, labels: ["cli=1"] }]));
    expect(fromStdin.stdout).toBe(`Revision: ${before + 2}\n`);

    const get = await cli(["policy", "get", "-H", host]);
    expect(get.code).toBe(0);
    const [json, revision] = get.stdout.split(/\n(?=Revision:)/);
    expect(JSON.parse(json!).length).toBe(3);
    expect(revision).toBe(`Revision: ${before + 2}\n`);
    expect(JSON.parse((await cli(["policy", "get", "-o", "json", "-H", host])).stdout).revision).toBe(before + 2);

    const deleted = await cli(["policy", "delete", "cli=1", "-H", host]);
    expect(deleted.stdout).toBe(`Revision: ${before + 3}\n`);
    const nothing = await cli(["policy", "delete", "-H", host]);
    expect([nothing.code, nothing.stderr]).toEqual([1, "cannot delete policy: give the labels of the rules to delete, or --all to delete every rule\n"]);
  }, 30_000);

  test("an invalid import lists each problem and says nothing changed", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: x }\nspec:\n  endpointSelector: {}\n  ingres: []\n");
    const run = await cli(["policy", "import", file, "-H", host]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(`cannot import policy ${file}: nothing was changed; 1 problem:\n  spec.ingres: unknown field (did you mean "ingress"?)\n`);
    const missing = await cli(["policy", "import", join(dir, "nope.yaml"), "-H", host]);
    expect(missing.stderr).toBe(`cannot import policy ${join(dir, "nope.yaml")}: cannot read ${join(dir, "nope.yaml")}: ENOENT\n`);
  }, 30_000);

  test("policy wait returns once every endpoint realized the revision, and times out clearly", async () => {
    const { revision } = await client.policy();
    const ok = await cli(["policy", "wait", String(revision), "-H", host]);
    expect([ok.code, ok.stdout]).toEqual([0, `All 2 endpoints enforce policy revision ${revision} or later\n`]);
    const late = await cli(["policy", "wait", String(revision + 5), "--max-wait-time", "300ms", "-H", host]);
    expect(late.code).toBe(1);
    expect(late.stderr).toStartWith(`timed out after 300ms waiting for policy revision ${revision + 5}: 2 of 2 endpoints behind: endpoint `);
    expect(late.stderr.trim().split("\n")).toHaveLength(1);
  }, 30_000);

  test("policy trace prints the verdict and the deciding rules", async () => {
    const [web, db] = await client.endpoints();
    const run = await cli(["policy", "trace", "--src-endpoint", String(web!.id), "--dst-endpoint", String(db!.id), "--dport", "5432/TCP", "-H", host]);
    expect(run.stderr).toBe("");
    expect(run.stdout).toContain("Ingress of the destination: ALLOWED\n  allowed by rule shop/db");
    expect(run.stdout).toEndWith("Final verdict: ALLOWED\n");
    const labels = await cli(["policy", "trace", "-s", "k8s:io.kubernetes.pod.namespace=shop", "-s", "app=web", "-d", "k8s:io.kubernetes.pod.namespace=shop,app=db", "--dport", "80", "-H", host]);
    expect(labels.stdout).toContain("Tracing From: [k8s:io.kubernetes.pod.namespace=shop, unspec:app=web] => To: [k8s:io.kubernetes.pod.namespace=shop, unspec:app=db] Ports: [80/TCP]");
    expect(labels.stdout).toEndWith("Final verdict: DENIED\n");
    const json = JSON.parse((await cli(["policy", "trace", "-s", "reserved:world", "--dst-endpoint", String(db!.id), "--dport", "5432", "-o", "json", "-H", host])).stdout);
    expect(json.verdict).toBe("denied");
  }, 30_000);

  test("identity list and get: upstream's table", async () => {
    const list = await cli(["identity", "list", "-H", host]);
    const rows = list.stdout.split("\n").map((l) => l.trimEnd());
    expect(rows[0]).toMatch(/^ID\s+LABELS$/);
    expect(rows[1]).toMatch(/^1\s+reserved:host$/);
    const web = (await client.endpoints())[0]!;
    const at = rows.findIndex((r) => new RegExp(`^${web.identity}\\s+k8s:io\\.kubernetes\\.pod\\.namespace=shop$`).test(r));
    expect(at).toBeGreaterThan(0);
    expect(rows[at + 1]).toMatch(/^\s+unspec:app=web$/);
    const get = await cli(["identity", "get", String(web.identity), "-H", host]);
    expect(get.stdout.split("\n").map((l) => l.trimEnd())).toEqual(["ID    LABELS", `${web.identity}   k8s:io.kubernetes.pod.namespace=shop`, "      unspec:app=web", ""]);
    const missing = await cli(["identity", "get", "999", "-H", host]);
    expect([missing.code, missing.stderr]).toEqual([1, "cannot get identity 999: identity 999 not found (HTTP 404)\n"]);
  }, 30_000);

  test("endpoint labels changes the identity; endpoint list shows enforcement and identity", async () => {
    const [, db] = await client.endpoints();
    const run = await cli(["endpoint", "labels", String(db!.id), "--add", "tier=backend", "-H", host]);
    expect(run.stderr).toBe("");
    const changed = await client.endpoint(db!.id);
    expect(changed.labels).toContain("unspec:tier=backend");
    expect(run.stdout).toStartWith(`Endpoint ${db!.id}: identity ${changed.identity}, ready\n`);
    const list = await cli(["endpoint", "list", "-H", host]);
    const row = list.stdout.split("\n").find((l) => l.startsWith(`${db!.id} `))!;
    // The policy selects app=db: ingress is enforced, egress not.
    expect(row).toMatch(new RegExp(`^${db!.id}\\s+Enabled\\s+Disabled\\s+${changed.identity}\\s+`));
    const back = await cli(["endpoint", "labels", String(db!.id), "-d", "tier", "-H", host]);
    expect(back.code).toBe(0);
    const none = await cli(["endpoint", "labels", String(db!.id), "-H", host]);
    expect([none.code, none.stderr]).toEqual([1, `cannot change the labels of endpoint ${db!.id}: give labels to --add or --delete\n`]);
  }, 30_000);

  test("a dead socket: one clear line for every new command", async () => {
    const dead = `unix://${join(dir, "dead.sock")}`;
    for (const args of [["policy", "get"], ["policy", "import", "-"], ["policy", "delete", "--all"], ["policy", "wait", "1"], ["policy", "trace", "-s", "a=b", "-d", "c=d"], ["identity", "list"], ["endpoint", "labels", "1", "-a", "x=y"]]) {
      const run = await cli([...args, "-H", dead], "{}");
      expect(run.code).toBe(1);
      expect(run.stdout).toBe("");
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(run.stderr).toContain(`cannot reach the cilium agent at ${join(dir, "dead.sock")}: ENOENT (no such socket): is the agent running?`);
    }
  }, 30_000);
});

describe("restart", () => {
  test("the policy, its revision and the identities come back", async () => {
    const before = { policy: await client.policy(), identities: await client.identities(), endpoints: await client.endpoints() };
    await daemon!.stop();
    daemon = await startDaemon({ config, datapath, logger: quietLogger() });
    expect(await client.policy()).toEqual(before.policy);
    expect(await client.identities()).toEqual(before.identities);
    const endpoints = await client.endpoints();
    expect(endpoints.map((e) => [e.id, e.identity, e.state, e.policy?.["realized-revision"]])).toEqual(
      before.endpoints.map((e) => [e.id, e.identity, "ready", before.policy.revision]),
    );
  });
});

test("the API client's errors carry the issues", async () => {
  const error = await client.putPolicy("{}").catch((e) => e);
  expect(error).toBeInstanceOf(AgentApiError);
  expect((error.body as { issues: string[] }).issues).toEqual(["endpointSelector: required: the endpoints this rule applies to ({} selects all)"]);
});
