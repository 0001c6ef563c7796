/**
 * Identities and L3/L4 policy through the real executable: `cilium agent` in a node namespace,
 * pods with labels attached by `cilium-cni`, policies imported one scenario at a time with
 * `cilium policy import`, and real TCP and UDP probes between pods, the node and an "outside".
 * Every expected outcome below is written out by hand from the policy's meaning; none is computed
 * by the code under test.
 *
 * Topology (O = pid-derived octet):
 *   node      10.95.O.1 on its uplink (default route via the outside), pods' gateway 10.206.O.1
 *   outside   10.95.O.2 and 10.95.O.3, with a route back to the pod CIDR via the node (its UDP
 *             answers leave from 10.95.O.2 whatever they were sent to: UDP probes use that one)
 *   pods      10.206.O.0/24; namespaces "shop" and "billing"; each answers TCP 80, 8005, 9000, UDP 53
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNode, type Pod } from "../helpers/cluster-node.ts";
import { run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { connectOutside } from "../helpers/outside.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, startStream, type EchoServer, type Protocol } from "../helpers/traffic.ts";

const prefix = uniquePrefix("tpw");
const octet = (process.pid % 200) + 20;
const podCidr = `10.206.${octet}.0/24`;
const gateway = `10.206.${octet}.1`;
const nodeIp = `10.95.${octet}.1`;
const outsideIp = `10.95.${octet}.2`;
const outsideIp2 = `10.95.${octet}.3`;
const outsideNet = `10.95.${octet}.0/24`;
/** A probe expected to be dropped waits this long for an answer. */
const PROBE_TIMEOUT_MS = 1500;

const POD_SPECS: [name: string, namespace: string, labels: Record<string, string>][] = [
  ["web-0", "shop", { app: "web", tier: "front" }],
  ["web-1", "shop", { app: "web", tier: "front" }],
  ["api-0", "shop", { app: "api", tier: "back" }],
  ["db-0", "shop", { app: "db", tier: "data" }],
  ["pay-0", "billing", { app: "pay", tier: "back" }],
  ["pay-1", "billing", { app: "pay", tier: "back" }],
  ["ledger-0", "billing", { app: "ledger", tier: "data" }],
  ["audit-0", "billing", { app: "audit" }],
];

describePrivileged("identities and L3/L4 policy (real agent, real CNI plugin, real traffic)", () => {
  const namespaces = new TestNamespaces(prefix);
  const servers: EchoServer[] = [];
  const pods = new Map<string, Pod>();
  const endpointIds = new Map<string, number>();
  let node: TestNode;
  let outsideNs: string;
  let policyFile = 0;

  beforeAll(async () => {
    node = new TestNode(namespaces, { name: "n1", podCidr });
    outsideNs = namespaces.create("out");
    connectOutside({ nodeNetns: node.netnsPath, outsideNetns: `/var/run/netns/${outsideNs}`, prefix, nodeIp, outsideIp });
    run(["ip", "-n", outsideNs, "addr", "add", `${outsideIp2}/24`, "dev", `${prefix}wan`]);
    run(["ip", "-n", outsideNs, "route", "add", podCidr, "via", nodeIp]);
    await node.startAgent();
    for (const [name, namespace, labels] of POD_SPECS) pods.set(name, node.addPod(name, namespace, labels));
    const listeners = [
      { protocol: "tcp" as const, port: 80 },
      { protocol: "tcp" as const, port: 8005 },
      { protocol: "tcp" as const, port: 9000 },
      { protocol: "udp" as const, port: 53 },
    ];
    const started = await Promise.all([
      ...[...pods.values()].map((pod) => startEchoServers(pod.netns, listeners)),
      startEchoServers(node.netns, listeners),
      startEchoServers(outsideNs, listeners),
    ]);
    servers.push(...started);
    const { body } = await node.api("GET", "/endpoint");
    for (const endpoint of body) endpointIds.set(endpoint["k8s-pod-name"], endpoint.id);
  }, 120_000);

  afterAll(async () => {
    for (const server of servers) server.stop();
    await node?.destroy();
    namespaces.removeAll();
  });

  /* ---- helpers ------------------------------------------------------------------------ */

  /** Where a probe runs: a pod, the node ("host") or the outside. */
  function sourceNetns(name: string): string {
    if (name === "host") return node.netns;
    if (name === "outside") return outsideNs;
    return pods.get(name)!.netns;
  }

  function address(name: string): string {
    if (name === "host") return nodeIp;
    if (name === "outside") return outsideIp;
    if (name === "outside2") return outsideIp2;
    return pods.get(name)!.ip;
  }

  /** The source address the server sees when the probe gets through (topology, not policy). */
  function seenAs(from: string, to: string): string {
    if (from === "host") return gateway;
    if (from === "outside") return outsideIp;
    if (to === "outside" || to === "outside2") return nodeIp;
    return pods.get(from)!.ip;
  }

  interface Case {
    from: string;
    to: string;
    protocol: Protocol;
    port: number;
    expected: "allow" | "deny";
  }

  /** "api-0 -> db-0 tcp/80 allow" per line. */
  function cases(text: string): Case[] {
    return text
      .trim()
      .split("\n")
      .map((line) => {
        const match = /^\s*(\S+)\s+->\s+(\S+)\s+(tcp|udp)\/(\d+)\s+(allow|deny)\s*$/.exec(line);
        if (!match) throw new Error(`bad case line: ${line}`);
        return { from: match[1]!, to: match[2]!, protocol: match[3] as Protocol, port: Number(match[4]), expected: match[5] as "allow" | "deny" };
      });
  }

  /** Runs every probe at once; answers the lines whose outcome differs from the expected one. */
  async function mismatches(list: Case[]): Promise<string[]> {
    const outcomes = await Promise.all(list.map((c) => probeAsync(sourceNetns(c.from), c.protocol, address(c.to), c.port, PROBE_TIMEOUT_MS)));
    const dead = servers.filter((server) => !server.alive());
    if (dead.length > 0) throw new Error(`${dead.length} echo servers died: ${await dead[0]!.stderr()}`);
    return list.flatMap((c, i) => {
      const seen = outcomes[i];
      const got = seen === null ? "deny" : seen === seenAs(c.from, c.to) ? "allow" : `answered as ${seen}`;
      return got === c.expected ? [] : [`${c.from} -> ${c.to} ${c.protocol}/${c.port}: expected ${c.expected}, got ${got}`];
    });
  }

  function cilium(args: string[], stdin?: string) {
    return node.cilium(args, { stdin, check: false });
  }

  /** Replaces the whole policy with `text` through the CLI; answers the revision, once realized. */
  function applyPolicy(text: string): number {
    const deleted = cilium(["policy", "delete", "--all"]);
    expect(deleted.exitCode).toBe(0);
    const file = join(node.dir, `policy-${++policyFile}.yaml`);
    writeFileSync(file, text);
    const imported = cilium(["policy", "import", file]);
    expect(imported.stderr).toBe("");
    const match = /^Revision: (\d+)\n$/.exec(imported.stdout);
    expect(match).not.toBeNull();
    const revision = Number(match![1]);
    const wait = cilium(["policy", "wait", String(revision), "--max-wait-time", "10s"]);
    expect(wait.exitCode).toBe(0);
    return revision;
  }

  async function scenario(policy: string, expected: string): Promise<void> {
    applyPolicy(policy);
    expect(await mismatches(cases(expected))).toEqual([]);
  }

  const cnp = (name: string, namespace: string, spec: string) =>
    `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${spec.replace(/^\n/, "").replace(/^/gm, "  ")}\n`;

  /* ---- scenarios ----------------------------------------------------------------------- */

  test("no policy: nothing enforced, everything passes; every pod has an identity", async () => {
    const { body: endpoints } = await node.api("GET", "/endpoint");
    expect(endpoints).toHaveLength(8);
    for (const e of endpoints) {
      expect(e.state).toBe("ready");
      expect(e.identity).toBeGreaterThanOrEqual(256);
    }
    const byName = (name: string) => endpoints.find((e: any) => e["k8s-pod-name"] === name);
    // Same labels, same identity; the namespace is part of it.
    expect(byName("web-0").identity).toBe(byName("web-1").identity);
    expect(byName("pay-0").identity).toBe(byName("pay-1").identity);
    expect(new Set(endpoints.map((e: any) => e.identity)).size).toBe(6);
    const list = cilium(["endpoint", "list"]).stdout;
    expect(list).toMatch(new RegExp(`^${byName("db-0").id}\\s+Disabled\\s+Disabled\\s+${byName("db-0").identity}\\s+k8s:app=db`, "m"));
    const identities = cilium(["identity", "list"]).stdout;
    expect(identities).toMatch(new RegExp(`^${byName("audit-0").identity}\\s+k8s:app=audit\\n\\s+k8s:io\\.kubernetes\\.pod\\.namespace=billing`, "m"));

    expect(
      await mismatches(
        cases(`
web-0 -> db-0 tcp/80 allow
pay-0 -> web-1 udp/53 allow
host -> api-0 tcp/9000 allow
outside -> ledger-0 tcp/80 allow
audit-0 -> outside tcp/80 allow
ledger-0 -> host tcp/80 allow
`),
      ),
    ).toEqual([]);
  }, 30_000);

  test("L3 only: db accepts anything from api in its namespace, nothing else", async () => {
    await scenario(
      cnp(
        "db-from-api",
        "shop",
        `
endpointSelector: { matchLabels: { app: db } }
ingress:
  - fromEndpoints: [{ matchLabels: { app: api } }]
`,
      ),
      `
api-0 -> db-0 tcp/80 allow
api-0 -> db-0 tcp/9000 allow
api-0 -> db-0 udp/53 allow
web-0 -> db-0 tcp/80 deny
web-1 -> db-0 udp/53 deny
pay-0 -> db-0 tcp/80 deny
host -> db-0 tcp/80 deny
outside -> db-0 tcp/80 deny
db-0 -> web-0 tcp/80 allow
web-0 -> api-0 tcp/80 allow
pay-0 -> ledger-0 udp/53 allow
`,
    );
  }, 30_000);

  test("the kernel's view: cilium bpf policy get and endpoint list show db's enforced ingress", () => {
    const db = endpointIds.get("db-0")!;
    const api = JSON.parse(cilium(["endpoint", "get", String(endpointIds.get("api-0")!)]).stdout)[0];
    const bpf = run([join(import.meta.dir, "../../dist/cilium"), "bpf", "policy", "get", String(db), "--bpf-root", node.bpfRoot, "-o", "json"]);
    expect(JSON.parse(bpf.stdout)).toEqual({
      endpointFound: true,
      ingressEnforced: true,
      egressEnforced: false,
      entries: [{ direction: "ingress", identity: api.identity, protocol: 0, port: 0, prefixLength: 0, deny: false }],
    });
    const text = run([join(import.meta.dir, "../../dist/cilium"), "bpf", "policy", "get", String(db), "--bpf-root", node.bpfRoot]).stdout;
    expect(text).toContain("Ingress policy enforcement: Enabled\nEgress policy enforcement:  Disabled\n");
    expect(text).toMatch(new RegExp(`^Allow\\s+Ingress\\s+${api.identity}\\s+ANY\\s+0\\s*$`, "m"));
    expect(cilium(["endpoint", "list"]).stdout).toMatch(new RegExp(`^${db}\\s+Enabled\\s+Disabled\\s+\\d+\\s+k8s:`, "m"));
  });

  test("an invalid import changes nothing: the problems are listed and the verdicts stay", async () => {
    const before = cilium(["policy", "get", "-o", "json"]).stdout;
    const file = join(node.dir, "invalid.yaml");
    writeFileSync(
      file,
      cnp(
        "broken",
        "shop",
        `
endpointSelector: { matchLabels: { app: web } }
ingress:
  - fromEndpoints: [{ matchLabels: { app: api } }]
    toPorts: [{ ports: [{ port: "http", protocol: TCP }] }]
  - fromCIDR: ["10.0.0.1/8"]
egres: []
`,
      ),
    );
    const result = cilium(["policy", "import", file]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr.split("\n")).toEqual([
      `cannot import policy ${file}: nothing was changed; 3 problems:`,
      '  spec.egres: unknown field (did you mean "egress"?)',
      '  spec.ingress[0].toPorts[0].ports[0].port: port name "http" is not supported yet: give the port number',
      expect.stringMatching(/^ {2}spec\.ingress\[1\]\.fromCIDR\[0\]: .*10\.0\.0\.1\/8/),
      "",
    ]);
    expect(cilium(["policy", "get", "-o", "json"]).stdout).toBe(before);
    expect(
      await mismatches(
        cases(`
api-0 -> db-0 tcp/80 allow
web-0 -> db-0 tcp/80 deny
web-0 -> api-0 tcp/9000 allow
`),
      ),
    ).toEqual([]);
  }, 30_000);

  test("cilium endpoint labels: identity and policy follow within a second", async () => {
    const web0 = String(endpointIds.get("web-0")!);
    const identityOf = (id: string) => JSON.parse(cilium(["endpoint", "get", id]).stdout)[0];
    const before = identityOf(web0).identity;
    expect(await mismatches(cases("web-0 -> db-0 tcp/80 deny"))).toEqual([]);
    try {
      // web-0 becomes app=api (tier=front stays): a new identity, which db's policy selects.
      const changed = cilium(["endpoint", "labels", web0, "--add", "k8s:app=api"]);
      expect(changed.stderr).toBe("");
      const changedAt = Date.now();
      const now = identityOf(web0);
      expect(now).toMatchObject({ state: "ready", labels: ["k8s:app=api", "k8s:io.kubernetes.pod.namespace=shop", "k8s:tier=front"] });
      expect(now.identity).not.toBe(before);
      expect(await probeAsync(pods.get("web-0")!.netns, "tcp", pods.get("db-0")!.ip, 80, 1000)).toBe(pods.get("web-0")!.ip);
      expect(Date.now() - changedAt).toBeLessThan(1500);
      expect(await mismatches(cases("web-1 -> db-0 tcp/80 deny"))).toEqual([]);
    } finally {
      expect(cilium(["endpoint", "labels", web0, "--add", "k8s:app=web"]).exitCode).toBe(0);
    }
    // Back to web's labels: web's identity (web-1 kept it), denied again at once.
    expect(identityOf(web0).identity).toBe(before);
    expect(await mismatches(cases("web-0 -> db-0 tcp/80 deny\nweb-1 -> db-0 tcp/80 deny\napi-0 -> db-0 tcp/80 allow"))).toEqual([]);
  }, 30_000);

  test("L4 only: web accepts TCP 80 from anyone", async () => {
    await scenario(
      cnp(
        "web-port-80",
        "shop",
        `
endpointSelector: { matchLabels: { app: web } }
ingress:
  - toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
      ),
      `
api-0 -> web-0 tcp/80 allow
api-0 -> web-0 tcp/9000 deny
api-0 -> web-1 udp/53 deny
pay-1 -> web-1 tcp/80 allow
host -> web-0 tcp/80 allow
outside -> web-1 tcp/80 allow
outside -> web-1 tcp/8005 deny
web-0 -> db-0 tcp/9000 allow
web-0 -> web-1 tcp/80 allow
`,
    );
  }, 30_000);

  test("L3 + L4, bare rules: ledger accepts TCP 80 and UDP 53 from tier=back in any namespace", async () => {
    await scenario(
      JSON.stringify([
        {
          endpointSelector: { matchLabels: { app: "ledger" } },
          ingress: [
            {
              fromEndpoints: [{ matchLabels: { tier: "back" } }],
              toPorts: [{ ports: [{ port: "80", protocol: "TCP" }, { port: "53", protocol: "UDP" }] }],
            },
          ],
          labels: ["scenario=l3l4"],
        },
      ]),
      `
pay-0 -> ledger-0 tcp/80 allow
pay-1 -> ledger-0 udp/53 allow
api-0 -> ledger-0 tcp/80 allow
pay-0 -> ledger-0 tcp/9000 deny
api-0 -> ledger-0 tcp/8005 deny
audit-0 -> ledger-0 tcp/80 deny
web-0 -> ledger-0 udp/53 deny
host -> ledger-0 tcp/80 deny
ledger-0 -> pay-0 tcp/9000 allow
`,
    );
  }, 30_000);

  test("cilium policy trace agrees with the traffic", async () => {
    const trace = (from: string, to: string, dport: string) => {
      const out = cilium(["policy", "trace", "--src-endpoint", String(endpointIds.get(from)!), "--dst-endpoint", String(endpointIds.get(to)!), "--dport", dport]).stdout;
      return /Final verdict: (ALLOWED|DENIED)\n$/.exec(out)?.[1];
    };
    expect(trace("api-0", "ledger-0", "80/TCP")).toBe("ALLOWED");
    expect(trace("pay-1", "ledger-0", "53/UDP")).toBe("ALLOWED");
    expect(trace("audit-0", "ledger-0", "80/TCP")).toBe("DENIED");
    expect(trace("pay-0", "ledger-0", "9000/TCP")).toBe("DENIED");
    expect(trace("ledger-0", "pay-0", "9000/TCP")).toBe("ALLOWED");
    const denied = cilium(["policy", "trace", "--src-endpoint", String(endpointIds.get("audit-0")!), "--dst-endpoint", String(endpointIds.get("ledger-0")!), "--dport", "80/TCP"]).stdout;
    expect(denied).toContain("Ingress of the destination: DENIED\n  denied: no rule allows ingress traffic from the source on this port\n  enforced: yes; rules selecting the destination: unspec:scenario=l3l4");
    const allowed = cilium(["policy", "trace", "-s", "k8s:io.kubernetes.pod.namespace=shop", "-s", "tier=back", "-d", "app=ledger", "--dport", "53/UDP"]).stdout;
    expect(allowed).toContain("  deciding rules: unspec:scenario=l3l4");
    expect(
      await mismatches(
        cases(`
api-0 -> ledger-0 tcp/80 allow
pay-1 -> ledger-0 udp/53 allow
audit-0 -> ledger-0 tcp/80 deny
pay-0 -> ledger-0 tcp/9000 deny
ledger-0 -> pay-0 tcp/9000 allow
`),
      ),
    ).toEqual([]);
  }, 30_000);

  test("port ranges, clusterwide: tier=back accepts TCP 8000-8010 from the cluster", async () => {
    await scenario(
      `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: { name: back-ports }
spec:
  endpointSelector: { matchLabels: { tier: back } }
  ingress:
    - fromEntities: [cluster]
      toPorts: [{ ports: [{ port: "8000", endPort: 8010, protocol: TCP }] }]
`,
      `
web-0 -> api-0 tcp/8005 allow
web-0 -> api-0 tcp/80 deny
web-0 -> api-0 tcp/9000 deny
web-0 -> api-0 udp/53 deny
ledger-0 -> pay-0 tcp/8005 allow
db-0 -> pay-1 tcp/80 deny
host -> pay-0 tcp/8005 allow
outside -> pay-0 tcp/8005 deny
pay-0 -> web-0 tcp/9000 allow
`,
    );
  }, 30_000);

  test("CIDR with except, egress: pay reaches the outside network but not the excepted address, the node or pods", async () => {
    await scenario(
      cnp(
        "pay-egress",
        "billing",
        `
endpointSelector: { matchLabels: { app: pay } }
egress:
  - toCIDRSet: [{ cidr: "${outsideNet}", except: ["${outsideIp2}/32"] }]
`,
      ),
      `
pay-0 -> outside tcp/80 allow
pay-0 -> outside udp/53 allow
pay-1 -> outside tcp/9000 allow
pay-0 -> outside2 tcp/80 deny
pay-1 -> outside2 tcp/8005 deny
pay-0 -> host tcp/80 deny
pay-0 -> ledger-0 tcp/80 deny
ledger-0 -> outside2 tcp/80 allow
audit-0 -> pay-0 tcp/80 allow
`,
    );
    // The prefix and its except have CIDR identities in the ipcache.
    const identities = JSON.parse(cilium(["identity", "list", "-o", "json"]).stdout) as { id: number; labels: string[] }[];
    const cidrIdentities = identities.filter((i) => i.labels.includes(`cidr:${outsideNet}`)).map((i) => i.id);
    expect(cidrIdentities).toHaveLength(2);
    for (const id of cidrIdentities) expect(id).toBeGreaterThan(1 << 24);
    expect(identities.filter((i) => i.labels.includes(`cidr:${outsideIp2}/32`))).toHaveLength(1);
  }, 30_000);

  test("entities: web only from the host and only to the world; ledger from the cluster", async () => {
    await scenario(
      `${cnp(
        "web-entities",
        "shop",
        `
endpointSelector: { matchLabels: { app: web } }
ingress:
  - fromEntities: [host]
egress:
  - toEntities: [world]
`,
      )}---\n${cnp(
        "ledger-cluster",
        "billing",
        `
endpointSelector: { matchLabels: { app: ledger } }
ingress:
  - fromEntities: [cluster]
`,
      )}`,
      `
host -> web-0 tcp/80 allow
api-0 -> web-0 tcp/80 deny
outside -> web-1 tcp/80 deny
web-0 -> outside tcp/80 allow
web-1 -> outside2 tcp/9000 allow
web-1 -> outside udp/53 allow
web-0 -> db-0 tcp/80 deny
web-0 -> host tcp/80 deny
web-0 -> ledger-0 tcp/80 deny
pay-0 -> ledger-0 tcp/80 allow
api-0 -> ledger-0 udp/53 allow
host -> ledger-0 tcp/80 allow
outside -> ledger-0 tcp/80 deny
`,
    );
  }, 30_000);

  test("deny over allow: db allows everyone but web on TCP 80", async () => {
    await scenario(
      cnp(
        "db-deny-web",
        "shop",
        `
endpointSelector: { matchLabels: { app: db } }
ingress:
  - fromEntities: [all]
ingressDeny:
  - fromEndpoints: [{ matchLabels: { app: web } }]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
      ),
      `
api-0 -> db-0 tcp/80 allow
web-0 -> db-0 tcp/80 deny
web-1 -> db-0 tcp/80 deny
web-0 -> db-0 tcp/9000 allow
web-1 -> db-0 udp/53 allow
pay-0 -> db-0 tcp/80 allow
outside -> db-0 tcp/80 allow
host -> db-0 tcp/80 allow
`,
    );
  }, 30_000);

  test("default deny through a rule that allows nothing: api accepts nothing, still sends", async () => {
    await scenario(
      cnp(
        "api-lockdown",
        "shop",
        `
endpointSelector: { matchLabels: { app: api } }
ingress:
  - {}
`,
      ),
      `
web-0 -> api-0 tcp/80 deny
db-0 -> api-0 udp/53 deny
host -> api-0 tcp/80 deny
outside -> api-0 tcp/80 deny
pay-0 -> api-0 tcp/8005 deny
api-0 -> db-0 tcp/80 allow
api-0 -> outside tcp/80 allow
web-0 -> db-0 tcp/80 allow
`,
    );
  }, 30_000);

  test("enableDefaultDeny false: only the deny applies to web", async () => {
    await scenario(
      cnp(
        "web-no-default-deny",
        "shop",
        `
endpointSelector: { matchLabels: { app: web } }
enableDefaultDeny: { ingress: false }
ingress:
  - fromEndpoints: [{ matchLabels: { app: api } }]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
ingressDeny:
  - fromEndpoints: [{ matchLabels: { app: db } }]
`,
      ),
      `
db-0 -> web-0 tcp/80 deny
db-0 -> web-1 udp/53 deny
api-0 -> web-0 tcp/80 allow
api-0 -> web-0 tcp/9000 allow
pay-0 -> web-1 tcp/9000 allow
host -> web-0 tcp/80 allow
outside -> web-0 tcp/80 allow
web-0 -> db-0 tcp/80 allow
`,
    );
    const web = cilium(["endpoint", "list"]).stdout;
    // The deny needs the map: ingress is enforced in the datapath (allow-all plus the deny).
    expect(web).toMatch(new RegExp(`^${endpointIds.get("web-0")}\\s+Enabled\\s+Disabled\\s`, "m"));
  }, 30_000);

  test("egress policy: audit talks only to ledger on TCP 80 and to the host", async () => {
    await scenario(
      cnp(
        "audit-egress",
        "billing",
        `
endpointSelector: { matchLabels: { app: audit } }
egress:
  - toEndpoints: [{ matchLabels: { app: ledger } }]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
  - toEntities: [host]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
      ),
      `
audit-0 -> ledger-0 tcp/80 allow
audit-0 -> ledger-0 tcp/9000 deny
audit-0 -> ledger-0 udp/53 deny
audit-0 -> pay-0 tcp/80 deny
audit-0 -> web-0 tcp/80 deny
audit-0 -> host tcp/80 allow
audit-0 -> outside tcp/80 deny
pay-0 -> audit-0 tcp/80 allow
ledger-0 -> audit-0 udp/53 allow
`,
    );
  }, 30_000);

  test("Kubernetes NetworkPolicy: shop pods accept TCP 80 from shop pods only", async () => {
    await scenario(
      `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: shop-internal, namespace: shop }
spec:
  podSelector: {}
  ingress:
    - from: [{ podSelector: {} }]
      ports: [{ protocol: TCP, port: 80 }]
`,
      `
web-0 -> db-0 tcp/80 allow
api-0 -> web-1 tcp/80 allow
web-0 -> db-0 tcp/9000 deny
db-0 -> api-0 udp/53 deny
pay-0 -> web-0 tcp/80 deny
host -> db-0 tcp/80 deny
outside -> api-0 tcp/80 deny
pay-0 -> ledger-0 tcp/80 allow
web-0 -> pay-0 tcp/80 allow
`,
    );
  }, 30_000);

  test("Kubernetes NetworkPolicy with podSelector labels: the CNI's pods carry k8s labels, so the selectors select them", async () => {
    await scenario(
      `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: db-from-api, namespace: shop }
spec:
  podSelector: { matchLabels: { app: db } }
  ingress:
    - from: [{ podSelector: { matchExpressions: [{ key: tier, operator: In, values: [back] }] } }]
      ports: [{ protocol: TCP, port: 80 }]
`,
      `
api-0 -> db-0 tcp/80 allow
web-0 -> db-0 tcp/80 deny
pay-0 -> db-0 tcp/80 deny
api-0 -> db-0 tcp/9000 deny
web-0 -> api-0 tcp/80 allow
pay-0 -> web-1 tcp/80 allow
`,
    );
  }, 30_000);

  test("Kubernetes NetworkPolicy, egress: billing reaches its own pods and an ipBlock with except", async () => {
    await scenario(
      `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: billing-egress, namespace: billing }
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to: [{ ipBlock: { cidr: "${outsideNet}", except: ["${outsideIp2}/32"] } }]
      ports: [{ protocol: TCP, port: 80 }, { protocol: UDP, port: 53 }]
    - to: [{ podSelector: {} }]
`,
      `
pay-0 -> outside tcp/80 allow
ledger-0 -> outside udp/53 allow
audit-0 -> outside tcp/9000 deny
pay-1 -> outside2 tcp/80 deny
pay-0 -> ledger-0 tcp/9000 allow
ledger-0 -> web-0 tcp/80 deny
pay-0 -> host tcp/80 deny
web-0 -> pay-0 tcp/80 allow
`,
    );
  }, 30_000);

  /* ---- changes under traffic ------------------------------------------------------------ */

  test("revoking an allow stops an open connection within a second", async () => {
    const allow = (port: number) =>
      cnp(
        "db-stream",
        "shop",
        `
endpointSelector: { matchLabels: { app: db } }
ingress:
  - fromEndpoints: [{ matchLabels: { app: api } }]
    toPorts: [{ ports: [{ port: "${port}", protocol: TCP }] }]
`,
      );
    applyPolicy(allow(80));
    const stream = startStream(pods.get("api-0")!.netns, pods.get("db-0")!.ip, 80, 20);
    await Bun.sleep(700);
    const file = join(node.dir, "revoke.yaml");
    writeFileSync(file, allow(9000));
    const revoked = cilium(["policy", "import", "--replace", file]);
    expect(revoked.exitCode).toBe(0);
    const revokedAt = Date.now();
    await Bun.sleep(1500);
    const result = await stream.stop();
    expect(result.received).toBeGreaterThan(15);
    expect(result.sent - result.received).toBeGreaterThan(40);
    expect(result.lastReceivedAt!).toBeLessThan(revokedAt + 1000);
    expect(await mismatches(cases("api-0 -> db-0 tcp/80 deny\napi-0 -> db-0 tcp/9000 allow"))).toEqual([]);
  }, 30_000);

  test("importing and deleting policies while traffic flows keeps allowed connections going", async () => {
    applyPolicy(
      cnp(
        "ledger-from-pay",
        "billing",
        `
endpointSelector: { matchLabels: { app: ledger } }
ingress:
  - fromEndpoints: [{ matchLabels: { app: pay } }]
`,
      ),
    );
    const stream = startStream(pods.get("pay-0")!.netns, pods.get("ledger-0")!.ip, 80, 20);
    const file = join(node.dir, "churn.yaml");
    for (let i = 0; i < 4; i++) {
      writeFileSync(file, cnp(`churn-${i}`, "shop", `\nendpointSelector: { matchLabels: { app: web } }\ningress:\n  - fromEndpoints: [{ matchLabels: { app: api } }]\n`));
      expect(cilium(["policy", "import", file]).exitCode).toBe(0);
      await Bun.sleep(150);
      expect(cilium(["policy", "delete", `k8s:io.cilium.k8s.policy.name=churn-${i}`]).exitCode).toBe(0);
      await Bun.sleep(150);
    }
    // The stream's own policy goes and comes back too (its direction stays allowed throughout).
    writeFileSync(file, cnp("ledger-all", "billing", "\nendpointSelector: { matchLabels: { app: ledger } }\ningress:\n  - fromEntities: [all]\n"));
    expect(cilium(["policy", "import", file]).exitCode).toBe(0);
    expect(cilium(["policy", "delete", "k8s:io.cilium.k8s.policy.name=ledger-from-pay"]).exitCode).toBe(0);
    await Bun.sleep(1000);
    const result = await stream.stop();
    expect(result.closed).toBe(false);
    expect(result.sent).toBeGreaterThan(80);
    expect(result.received).toBeGreaterThanOrEqual(result.sent - 3);
    expect(await mismatches(cases("audit-0 -> ledger-0 tcp/9000 allow\nweb-0 -> ledger-0 udp/53 allow\napi-0 -> web-0 tcp/80 allow"))).toEqual([]);
  }, 30_000);

  test("kill -9 of the agent: enforcement goes on, and a restarted agent re-adopts identities and policy", async () => {
    const revision = applyPolicy(
      cnp(
        "db-deny-web",
        "shop",
        `
endpointSelector: { matchLabels: { app: db } }
ingress:
  - fromEntities: [all]
ingressDeny:
  - fromEndpoints: [{ matchLabels: { app: web } }]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
      ),
    );
    const expected = cases(`
web-0 -> db-0 tcp/80 deny
web-1 -> db-0 tcp/80 deny
web-0 -> db-0 tcp/9000 allow
api-0 -> db-0 tcp/80 allow
outside -> db-0 tcp/80 allow
`);
    const db = String(endpointIds.get("db-0")!);
    const bpfPolicy = () => run([join(import.meta.dir, "../../dist/cilium"), "bpf", "policy", "get", db, "--bpf-root", node.bpfRoot, "-o", "json"]).stdout;
    const kernelBefore = bpfPolicy();
    const { body: before } = await node.api("GET", "/endpoint");

    await node.killAgent();
    expect(await mismatches(expected)).toEqual([]);
    expect(bpfPolicy()).toBe(kernelBefore);

    await node.startAgent();
    const { body: after } = await node.api("GET", "/endpoint");
    expect(after.map((e: any) => [e.id, e.identity, e.state, e.policy["realized-revision"]])).toEqual(before.map((e: any) => [e.id, e.identity, "ready", revision]));
    expect((await node.api("GET", "/policy")).body.revision).toBe(revision);
    expect(bpfPolicy()).toBe(kernelBefore);
    expect(await mismatches(expected)).toEqual([]);

    // A pod added after the restart with web's labels gets web's identity and is denied too.
    const late = node.addPod("web-2", "shop", { app: "web", tier: "front" });
    pods.set("web-2", late);
    const { body: endpoints } = await node.api("GET", "/endpoint");
    const identity = (name: string) => endpoints.find((e: any) => e["k8s-pod-name"] === name).identity;
    expect(identity("web-2")).toBe(identity("web-0"));
    expect(await mismatches(cases("web-2 -> db-0 tcp/80 deny\nweb-2 -> db-0 tcp/9000 allow"))).toEqual([]);
    const status = cilium(["status"]);
    expect(status.exitCode).toBe(0);
  }, 60_000);
});
