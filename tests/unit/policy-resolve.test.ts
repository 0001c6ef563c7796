/**
 * The resolver, end to end: policy text -> repository -> map state -> the datapath's lookup.
 * Every expected verdict below is written by hand from upstream's documented semantics; each
 * lookup is also checked against `policy trace` so the two never disagree.
 */
import { describe, expect, test } from "bun:test";
import { CidrIdentityAllocator } from "../../src/identity/cidr.ts";
import { LabelSet } from "../../src/identity/labels.ts";
import { RESERVED_IDENTITIES } from "../../src/identity/reserved.ts";
import { formatCidr, parseCidr } from "../../src/net/ipv4.ts";
import { lookupVerdict, policyKey, type MapState } from "../../src/policy/map-state.ts";
import { portPrefixBits, portPrefixMatches } from "../../src/policy/ports.ts";
import { parsePolicyText } from "../../src/policy/parse.ts";
import { Repository } from "../../src/policy/repository.ts";
import { resolvePolicy, type EndpointPolicy, type ResolveOptions } from "../../src/policy/resolve.ts";
import { SelectorCache } from "../../src/policy/selector-cache.ts";
import { traceDirection } from "../../src/policy/trace.ts";

type Verdict = "allow" | "deny";
const PROTO = { TCP: 6, UDP: 17, SCTP: 132, ICMP: 1, ICMPv6: 58, GRE: 47 } as const;
type Proto = keyof typeof PROTO;
const NS = "k8s:io.kubernetes.pod.namespace";

const HOST = 1;
const WORLD = 2;
const UNMANAGED = 3;
const HEALTH = 4;
const INIT = 5;
const REMOTE_NODE = 6;
const KUBE_APISERVER = 7;
const INGRESS = 8;

/**
 * The other lookup a datapath may do (bpf/lib/policy.h as first written): the longest match for
 * the identity and the longest for identity 0, deny if either is a deny, allow if either exists.
 * Settled states must give the same verdict under it as under lookupVerdict.
 */
function lookupEitherDeny(state: MapState, identity: number, direction: "ingress" | "egress", protocol: number, port: number): Verdict {
  const longest = (id: number) => {
    let best: { bits: number; deny: boolean } | undefined;
    for (const e of state.values()) {
      if (e.identity !== id || e.direction !== direction || !portPrefixMatches(e, protocol, port)) continue;
      if (!best || portPrefixBits(e) > best.bits) best = { bits: portPrefixBits(e), deny: e.deny };
    }
    return best;
  };
  const own = longest(identity);
  const any = longest(0);
  if (own?.deny || any?.deny) return "deny";
  return own || any ? "allow" : "deny";
}

class Cluster {
  readonly cache = new SelectorCache();
  readonly repo = new Repository(this.cache);
  readonly options: ResolveOptions;
  private readonly cidrAllocator = new CidrIdentityAllocator();
  private readonly cidrIds = new Map<string, number>();
  private next = 1000;

  constructor(options: Partial<ResolveOptions> = {}) {
    this.options = { enforcement: "default", ...options };
    for (const r of RESERVED_IDENTITIES) this.cache.upsertIdentity(r.id, r.labels);
  }

  /** A pod identity: k8s labels plus the namespace label. */
  pod(namespace: string, ...labels: string[]): number {
    return this.identity([...labels.map((l) => `k8s:${l}`), `${NS}=${namespace}`]);
  }

  identity(labels: string[]): number {
    const id = this.next++;
    this.cache.upsertIdentity(id, LabelSet.parse(labels));
    return id;
  }

  /** The CIDR identity of a prefix (what the ipcache maps its addresses to). */
  cidr(text: string): number {
    const prefix = formatCidr(parseCidr(text));
    const known = this.cidrIds.get(prefix);
    if (known !== undefined) return known;
    const { identity } = this.cidrAllocator.acquire(parseCidr(prefix));
    this.cache.upsertIdentity(identity.id, identity.labels);
    this.cidrIds.set(prefix, identity.id);
    return identity.id;
  }

  /** Imports policy text (JSON or YAML) and gives every prefix it names a CIDR identity. */
  apply(text: string | object[]): this {
    this.repo.add(parsePolicyText(typeof text === "string" ? text : JSON.stringify(text)));
    for (const prefix of this.repo.cidrPrefixes()) this.cidr(formatCidr(prefix));
    return this;
  }

  policy(id: number): EndpointPolicy {
    return resolvePolicy(this.repo, this.cache, this.cache.identityLabels(id)!, this.options);
  }

  /** What the destination's ingress map says about a packet from `src`. */
  ingress(dst: number, src: number, proto: Proto, port = 0): Verdict {
    return this.check("ingress", dst, src, proto, port);
  }

  /** What the source's egress map says about a packet to `dst`. */
  egress(src: number, dst: number, proto: Proto, port = 0): Verdict {
    return this.check("egress", src, dst, proto, port);
  }

  private check(direction: "ingress" | "egress", subject: number, peer: number, proto: Proto, port: number): Verdict {
    const state = this.policy(subject).state;
    const verdict = lookupVerdict(state, peer, direction, PROTO[proto], port);
    expect(lookupEitherDeny(state, peer, direction, PROTO[proto], port)).toBe(verdict);
    const trace = traceDirection(this.repo, direction, this.cache.identityLabels(subject)!, this.cache.identityLabels(peer)!, PROTO[proto], port, this.options);
    expect(trace.verdict === "allowed" ? "allow" : "deny").toBe(verdict);
    return verdict;
  }
}

const rule = (spec: object) => [spec];
const dbSelector = { matchLabels: { app: "db" } };
const webPeer = { matchLabels: { app: "web" } };

describe("allow rules and default deny", () => {
  test("an L3 rule allows every protocol and port from the selected peers only", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    const other = c.pod("prod", "app=other");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer] }] }));
    expect(c.ingress(db, web, "TCP", 5432)).toBe("allow");
    expect(c.ingress(db, web, "UDP", 53)).toBe("allow");
    expect(c.ingress(db, web, "ICMP", 8)).toBe("allow");
    expect(c.ingress(db, web, "GRE")).toBe("allow");
    expect(c.ingress(db, other, "TCP", 5432)).toBe("deny");
    expect(c.ingress(db, WORLD, "TCP", 5432)).toBe("deny");
    expect(c.ingress(db, HOST, "TCP", 5432)).toBe("deny");
    // Egress of db and ingress of web are selected by no rule: not enforced.
    expect(c.egress(db, WORLD, "TCP", 443)).toBe("allow");
    expect(c.ingress(web, WORLD, "TCP", 80)).toBe("allow");
    expect(c.policy(db).enforced("ingress")).toBe(true);
    expect(c.policy(db).enforced("egress")).toBe(false);
  });

  test("L4: ports restrict what the peers may reach", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "5432", protocol: "TCP" }] }] }] }));
    expect(c.ingress(db, web, "TCP", 5432)).toBe("allow");
    expect(c.ingress(db, web, "TCP", 5433)).toBe("deny");
    expect(c.ingress(db, web, "UDP", 5432)).toBe("deny");
    expect(c.ingress(db, web, "ICMP", 8)).toBe("deny");
  });

  test("ports without peers allow every identity on those ports", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("dev", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: "TCP" }] }] }] }));
    const outside = c.cidr("192.0.2.0/24");
    for (const peer of [web, WORLD, HOST, REMOTE_NODE, outside]) {
      expect(c.ingress(db, peer, "TCP", 80)).toBe("allow");
      expect(c.ingress(db, peer, "TCP", 81)).toBe("deny");
    }
  });

  test("an empty section allows nothing but turns on default deny", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{}] }));
    expect(c.ingress(db, web, "TCP", 80)).toBe("deny");
    expect(c.ingress(db, WORLD, "TCP", 80)).toBe("deny");
    expect(c.egress(db, web, "TCP", 80)).toBe("allow");
  });

  test("an explicitly empty peer list selects nothing, even with ports", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [], toPorts: [{ ports: [{ port: "80" }] }] }, { fromEntities: [] }] }));
    expect(c.ingress(db, web, "TCP", 80)).toBe("deny");
    expect(c.ingress(db, WORLD, "TCP", 80)).toBe("deny");
  });

  test("the wildcard peer {} in a bare rule selects every identity, reserved ones too", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("dev", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [{}] }] }));
    for (const peer of [web, WORLD, HOST, HEALTH, c.cidr("198.51.100.0/24")]) expect(c.ingress(db, peer, "UDP", 9)).toBe("allow");
  });

  test("the empty endpointSelector applies the rule to every endpoint", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("dev", "app=web");
    c.apply(rule({ endpointSelector: {}, egress: [{ toEndpoints: [webPeer] }] }));
    expect(c.egress(db, web, "TCP", 80)).toBe("allow");
    expect(c.egress(db, WORLD, "TCP", 80)).toBe("deny");
    expect(c.egress(web, WORLD, "TCP", 80)).toBe("deny");
    expect(c.egress(web, web, "TCP", 80)).toBe("allow");
  });

  test("egress rules: toEndpoints with ports", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: webPeer, egress: [{ toEndpoints: [dbSelector], toPorts: [{ ports: [{ port: "5432", protocol: "TCP" }] }] }] }));
    expect(c.egress(web, db, "TCP", 5432)).toBe("allow");
    expect(c.egress(web, db, "TCP", 22)).toBe("deny");
    expect(c.egress(web, WORLD, "TCP", 5432)).toBe("deny");
    expect(c.ingress(web, WORLD, "TCP", 22)).toBe("allow");
  });

  test("matchExpressions of every operator choose the peers", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const front = c.pod("prod", "app=web", "tier=front");
    const back = c.pod("prod", "app=api", "tier=back");
    const bare = c.pod("prod", "app=batch");
    const section = (expr: object) => rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [{ matchExpressions: [expr] }] }] });
    const cases: [object, Verdict[]][] = [
      [{ key: "tier", operator: "In", values: ["front", "edge"] }, ["allow", "deny", "deny"]],
      [{ key: "tier", operator: "NotIn", values: ["front"] }, ["deny", "allow", "allow"]],
      [{ key: "tier", operator: "Exists" }, ["allow", "allow", "deny"]],
      [{ key: "tier", operator: "DoesNotExist" }, ["deny", "deny", "allow"]],
    ];
    for (const [expr, expected] of cases) {
      const cl = new Cluster();
      const [d, f, b, n] = [cl.pod("prod", "app=db"), cl.pod("prod", "app=web", "tier=front"), cl.pod("prod", "app=api", "tier=back"), cl.pod("prod", "app=batch")];
      cl.apply(section(expr));
      expect([cl.ingress(d, f, "TCP", 1), cl.ingress(d, b, "TCP", 1), cl.ingress(d, n, "TCP", 1)]).toEqual(expected);
    }
    // NotIn also matches reserved identities, which have no tier label.
    c.apply(section({ key: "tier", operator: "NotIn", values: ["front"] }));
    expect([c.ingress(db, front, "TCP", 1), c.ingress(db, back, "TCP", 1), c.ingress(db, bare, "TCP", 1), c.ingress(db, WORLD, "TCP", 1)]).toEqual([
      "deny",
      "allow",
      "allow",
      "allow",
    ]);
  });
});

describe("protocols, ports and ranges", () => {
  const setup = (ports: object[]) => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer], toPorts: [{ ports }] }] }));
    return { c, db, web };
  };

  test("ANY (or no protocol) with a port is TCP, UDP and SCTP on that port", () => {
    for (const port of [{ port: "53", protocol: "ANY" }, { port: "53" }, { port: "53", protocol: "any" }]) {
      const { c, db, web } = setup([port]);
      expect([c.ingress(db, web, "TCP", 53), c.ingress(db, web, "UDP", 53), c.ingress(db, web, "SCTP", 53)]).toEqual(["allow", "allow", "allow"]);
      expect([c.ingress(db, web, "TCP", 54), c.ingress(db, web, "ICMP", 53), c.ingress(db, web, "GRE", 53)]).toEqual(["deny", "deny", "deny"]);
    }
  });

  test("port 0 is every port of the protocol", () => {
    const udp = setup([{ port: "0", protocol: "UDP" }]);
    expect([udp.c.ingress(udp.db, udp.web, "UDP", 1), udp.c.ingress(udp.db, udp.web, "UDP", 65535), udp.c.ingress(udp.db, udp.web, "TCP", 1)]).toEqual(["allow", "allow", "deny"]);
    const any = setup([{ port: "0" }]);
    expect([any.c.ingress(any.db, any.web, "SCTP", 7), any.c.ingress(any.db, any.web, "TCP", 7), any.c.ingress(any.db, any.web, "ICMP", 8)]).toEqual([
      "allow",
      "allow",
      "deny",
    ]);
  });

  test("SCTP only", () => {
    const { c, db, web } = setup([{ port: "9999", protocol: "SCTP" }]);
    expect([c.ingress(db, web, "SCTP", 9999), c.ingress(db, web, "TCP", 9999)]).toEqual(["allow", "deny"]);
  });

  test("port ranges include both ends and nothing outside", () => {
    const { c, db, web } = setup([{ port: "8000", endPort: 8010, protocol: "TCP" }]);
    const verdicts = [7999, 8000, 8001, 8005, 8007, 8008, 8009, 8010, 8011].map((p) => c.ingress(db, web, "TCP", p));
    expect(verdicts).toEqual(["deny", "allow", "allow", "allow", "allow", "allow", "allow", "allow", "deny"]);
    expect(c.ingress(db, web, "UDP", 8005)).toBe("deny");
  });

  test("the widest range, 1-65535, leaves out port 0", () => {
    const { c, db, web } = setup([{ port: "1", endPort: 65535, protocol: "TCP" }]);
    expect([c.ingress(db, web, "TCP", 0), c.ingress(db, web, "TCP", 1), c.ingress(db, web, "TCP", 32768), c.ingress(db, web, "TCP", 65535)]).toEqual([
      "deny",
      "allow",
      "allow",
      "allow",
    ]);
  });

  test("several ports and port rules add up", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(
      rule({
        endpointSelector: dbSelector,
        ingress: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "80", protocol: "TCP" }, { port: "443", protocol: "TCP" }] }, { ports: [{ port: "53", protocol: "UDP" }] }] }],
      }),
    );
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, web, "TCP", 443), c.ingress(db, web, "UDP", 53), c.ingress(db, web, "TCP", 53)]).toEqual([
      "allow",
      "allow",
      "allow",
      "deny",
    ]);
  });

  test("ICMP types by number and by name, per family", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(
      rule({
        endpointSelector: dbSelector,
        ingress: [{ fromEndpoints: [webPeer], icmps: [{ fields: [{ type: 8 }, { type: "TimeExceeded", family: "IPv4" }, { type: "EchoRequest", family: "IPv6" }] }] }],
      }),
    );
    expect(c.ingress(db, web, "ICMP", 8)).toBe("allow");
    expect(c.ingress(db, web, "ICMP", 11)).toBe("allow");
    expect(c.ingress(db, web, "ICMP", 0)).toBe("deny");
    expect(c.ingress(db, web, "ICMPv6", 128)).toBe("allow");
    expect(c.ingress(db, web, "ICMPv6", 8)).toBe("deny");
    expect(c.ingress(db, web, "TCP", 8)).toBe("deny");
  });
});

describe("CIDR peers", () => {
  test("fromCIDR selects the CIDR identities inside the prefix, not pods or other prefixes", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const pod = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromCIDR: ["10.0.0.0/8", "192.168.1.5"] }] }));
    const [ten, tenSub, eleven, host32] = [c.cidr("10.0.0.0/8"), c.cidr("10.1.0.0/16"), c.cidr("11.0.0.0/8"), c.cidr("192.168.1.5/32")];
    c.policy(db); // identities created after the import are picked up by resolution
    expect(c.ingress(db, ten, "TCP", 80)).toBe("allow");
    expect(c.ingress(db, tenSub, "TCP", 80)).toBe("allow");
    expect(c.ingress(db, host32, "UDP", 53)).toBe("allow");
    expect(c.ingress(db, eleven, "TCP", 80)).toBe("deny");
    expect(c.ingress(db, WORLD, "TCP", 80)).toBe("deny");
    expect(c.ingress(db, pod, "TCP", 80)).toBe("deny");
  });

  test("fromCIDRSet with except: both sides of each boundary", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.96.0.0/12"] }] }] }));
    // 10.96.0.0/12 spans 10.96.0.0 - 10.111.255.255.
    const expected: [string, Verdict][] = [
      ["10.0.0.0/8", "allow"],
      ["10.96.0.0/12", "deny"],
      ["10.95.255.0/24", "allow"],
      ["10.96.0.0/24", "deny"],
      ["10.111.255.0/24", "deny"],
      ["10.112.0.0/24", "allow"],
      ["10.64.0.0/10", "allow"],
      ["9.255.255.255/32", "deny"],
      ["11.0.0.0/32", "deny"],
    ];
    for (const [prefix, verdict] of expected) expect([prefix, c.ingress(db, c.cidr(prefix), "TCP", 443)]).toEqual([prefix, verdict]);
    expect(c.ingress(db, WORLD, "TCP", 443)).toBe("deny");
  });

  test("0.0.0.0/0 is the world: the world identity and every CIDR identity, not the cluster", () => {
    const c = new Cluster();
    const web = c.pod("prod", "app=web");
    const db = c.pod("prod", "app=db");
    c.apply(rule({ endpointSelector: webPeer, egress: [{ toCIDR: ["0.0.0.0/0"] }] }));
    expect(c.egress(web, WORLD, "TCP", 443)).toBe("allow");
    expect(c.egress(web, c.cidr("203.0.113.0/24"), "TCP", 443)).toBe("allow");
    expect(c.egress(web, db, "TCP", 443)).toBe("deny");
    expect(c.egress(web, HOST, "TCP", 443)).toBe("deny");
    expect(c.egress(web, REMOTE_NODE, "TCP", 443)).toBe("deny");
  });

  test("0.0.0.0/0 except a private range", () => {
    const c = new Cluster();
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: webPeer, egress: [{ toCIDRSet: [{ cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] }], toPorts: [{ ports: [{ port: "443", protocol: "TCP" }] }] }] }));
    expect(c.egress(web, WORLD, "TCP", 443)).toBe("allow");
    expect(c.egress(web, c.cidr("10.0.0.0/8"), "TCP", 443)).toBe("deny");
    expect(c.egress(web, c.cidr("10.3.0.0/16"), "TCP", 443)).toBe("deny");
    expect(c.egress(web, c.cidr("11.0.0.0/8"), "TCP", 443)).toBe("allow");
    expect(c.egress(web, WORLD, "TCP", 80)).toBe("deny");
  });

  test("the repository names every prefix that needs a CIDR identity, excepts included", () => {
    const c = new Cluster();
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.96.0.0/12"] }, { cidr: "0.0.0.0/0" }] }] }));
    expect(c.repo.cidrPrefixes().map(formatCidr).sort()).toEqual(["10.0.0.0/8", "10.96.0.0/12"]);
  });
});

describe("entities", () => {
  // Columns: host, world, unmanaged, health, init, remote-node, kube-apiserver, ingress, pod, CIDR.
  const table: [string, string][] = [
    ["all", "AAAAAAAAAA"],
    ["world", ".A.......A"],
    ["cluster", "A.AAAAAAA."],
    ["host", "A........."],
    ["remote-node", ".....AA..."],
    ["kube-apiserver", "......A..."],
    ["init", "....A....."],
    ["health", "...A......"],
    ["unmanaged", "..A......."],
    ["ingress", ".......A.."],
    ["none", ".........."],
  ];
  for (const [entity, row] of table) {
    test(`fromEntities: ${entity}`, () => {
      const c = new Cluster();
      const db = c.pod("prod", "app=db");
      const pod = c.pod("dev", "app=web");
      c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEntities: [entity] }] }));
      const peers = [HOST, WORLD, UNMANAGED, HEALTH, INIT, REMOTE_NODE, KUBE_APISERVER, INGRESS, pod, c.cidr("192.0.2.0/24")];
      const got = peers.map((p) => (c.ingress(db, p, "TCP", 80) === "allow" ? "A" : ".")).join("");
      expect(got).toBe(row);
    });
  }

  test("toEntities works the same at egress", () => {
    const c = new Cluster();
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: webPeer, egress: [{ toEntities: ["world", "kube-apiserver"] }] }));
    expect([c.egress(web, WORLD, "TCP", 443), c.egress(web, KUBE_APISERVER, "TCP", 6443), c.egress(web, HOST, "TCP", 443), c.egress(web, REMOTE_NODE, "TCP", 443)]).toEqual([
      "allow",
      "allow",
      "deny",
      "deny",
    ]);
  });
});

describe("deny beats allow", () => {
  const setup = (spec: object) => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    const other = c.pod("prod", "app=other");
    c.apply(rule({ endpointSelector: dbSelector, ...spec }));
    return { c, db, web, other };
  };
  const tcp80 = [{ ports: [{ port: "80", protocol: "TCP" }] }];

  test("deny L3 and allow L3 on the same peer", () => {
    const { c, db, web, other } = setup({ ingress: [{ fromEndpoints: [webPeer] }, { fromEndpoints: [{ matchLabels: { app: "other" } }] }], ingressDeny: [{ fromEndpoints: [webPeer] }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, web, "UDP", 53), c.ingress(db, other, "TCP", 80)]).toEqual(["deny", "deny", "allow"]);
  });

  test("allow L3, deny L4: only the denied port closes", () => {
    const { c, db, web } = setup({ ingress: [{ fromEndpoints: [webPeer] }], ingressDeny: [{ fromEndpoints: [webPeer], toPorts: tcp80 }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, web, "TCP", 81), c.ingress(db, web, "UDP", 80)]).toEqual(["deny", "allow", "allow"]);
  });

  test("allow L4, deny L3: the narrower allow does not win", () => {
    const { c, db, web } = setup({ ingress: [{ fromEndpoints: [webPeer], toPorts: tcp80 }], ingressDeny: [{ fromEndpoints: [webPeer] }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, web, "TCP", 81)]).toEqual(["deny", "deny"]);
  });

  test("allow L4 for every identity, deny L3 for one", () => {
    const { c, db, web, other } = setup({ ingress: [{ toPorts: tcp80 }], ingressDeny: [{ fromEndpoints: [webPeer] }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, other, "TCP", 80), c.ingress(db, WORLD, "TCP", 80), c.ingress(db, other, "TCP", 81)]).toEqual([
      "deny",
      "allow",
      "allow",
      "deny",
    ]);
  });

  test("allow everything, deny one peer's port", () => {
    const { c, db, web, other } = setup({ ingress: [{ fromEntities: ["all"] }], ingressDeny: [{ fromEndpoints: [webPeer], toPorts: tcp80 }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, web, "TCP", 81), c.ingress(db, other, "TCP", 80), c.ingress(db, WORLD, "TCP", 80)]).toEqual([
      "deny",
      "allow",
      "allow",
      "allow",
    ]);
  });

  test("allow one peer L3, deny a port for every identity", () => {
    const { c, db, web } = setup({ ingress: [{ fromEndpoints: [webPeer] }], ingressDeny: [{ toPorts: tcp80 }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, web, "TCP", 81), c.ingress(db, web, "UDP", 80)]).toEqual(["deny", "allow", "allow"]);
  });

  test("a denied range beats an allowed port inside it", () => {
    const { c, db, web } = setup({
      ingress: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "85", protocol: "TCP" }, { port: "91", protocol: "TCP" }] }] }],
      ingressDeny: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "80", endPort: 90, protocol: "TCP" }] }] }],
    });
    expect([c.ingress(db, web, "TCP", 85), c.ingress(db, web, "TCP", 91), c.ingress(db, web, "TCP", 79)]).toEqual(["deny", "allow", "deny"]);
  });

  test("a deny of every TCP port for any identity beats one peer's allow on TCP/80", () => {
    const { c, db, web } = setup({ ingress: [{ fromEndpoints: [webPeer], toPorts: tcp80 }, { fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "53", protocol: "UDP" }] }] }], ingressDeny: [{ toPorts: [{ ports: [{ port: "0", protocol: "TCP" }] }] }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, web, "UDP", 53)]).toEqual(["deny", "allow"]);
  });

  test("a deny for any identity on a range beats a narrower allow for any identity", () => {
    const { c, db, web } = setup({
      ingress: [{ toPorts: [{ ports: [{ port: "8080", protocol: "TCP" }] }] }],
      ingressDeny: [{ toPorts: [{ ports: [{ port: "8000", endPort: 8999, protocol: "TCP" }] }] }],
    });
    expect([c.ingress(db, web, "TCP", 8080), c.ingress(db, WORLD, "TCP", 8080)]).toEqual(["deny", "deny"]);
  });

  test("a peer's deny on a range beats an any-identity allow on a port inside it, only for that peer", () => {
    const { c, db, web, other } = setup({
      ingress: [{ fromEntities: ["all"] }, { toPorts: [{ ports: [{ port: "8080", protocol: "TCP" }] }] }],
      ingressDeny: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "8000", endPort: 8999, protocol: "TCP" }] }] }],
    });
    expect([c.ingress(db, web, "TCP", 8080), c.ingress(db, web, "TCP", 8500), c.ingress(db, web, "TCP", 9000), c.ingress(db, other, "TCP", 8080)]).toEqual([
      "deny",
      "deny",
      "allow",
      "allow",
    ]);
  });

  test("allow all, deny world: CIDR identities are world too", () => {
    const { c, db, web } = setup({ ingress: [{ fromEntities: ["all"] }], ingressDeny: [{ fromEntities: ["world"] }] });
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, WORLD, "TCP", 80), c.ingress(db, c.cidr("8.8.8.0/24"), "UDP", 53), c.ingress(db, HOST, "TCP", 80)]).toEqual([
      "allow",
      "deny",
      "deny",
      "allow",
    ]);
  });

  test("deny ANY on a port beats allow UDP on it", () => {
    const { c, db, web } = setup({
      ingress: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "53", protocol: "UDP" }] }] }],
      ingressDeny: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "53" }] }] }],
    });
    expect(c.ingress(db, web, "UDP", 53)).toBe("deny");
  });

  test("deny one ICMP type under an L3 allow", () => {
    const { c, db, web } = setup({ ingress: [{ fromEndpoints: [webPeer] }], ingressDeny: [{ fromEndpoints: [webPeer], icmps: [{ fields: [{ type: 8 }] }] }] });
    expect([c.ingress(db, web, "ICMP", 8), c.ingress(db, web, "ICMP", 0), c.ingress(db, web, "TCP", 8)]).toEqual(["deny", "allow", "allow"]);
  });

  test("a deny in one rule beats an allow in another; egress too", () => {
    const c = new Cluster();
    const web = c.pod("prod", "app=web");
    const db = c.pod("prod", "app=db");
    c.apply([
      { endpointSelector: webPeer, egress: [{ toEndpoints: [dbSelector] }], labels: ["allow-db"] },
      { endpointSelector: webPeer, egressDeny: [{ toEndpoints: [dbSelector], toPorts: [{ ports: [{ port: "22", protocol: "TCP" }] }] }], labels: ["no-ssh"] },
    ]);
    expect([c.egress(web, db, "TCP", 22), c.egress(web, db, "TCP", 5432)]).toEqual(["deny", "allow"]);
  });

  test("deny CIDR with except under a wide allow", () => {
    const c = new Cluster();
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: webPeer, egress: [{ toEntities: ["world"] }], egressDeny: [{ toCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }] }] }));
    expect([c.egress(web, c.cidr("10.0.0.0/8"), "TCP", 80), c.egress(web, c.cidr("10.1.0.0/16"), "TCP", 80), c.egress(web, c.cidr("10.2.0.0/16"), "TCP", 80), c.egress(web, WORLD, "TCP", 80)]).toEqual([
      "deny",
      "allow",
      "deny",
      "allow",
    ]);
  });
});

describe("default deny and enforcement modes", () => {
  test("a rule with only egress leaves ingress open", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    c.apply(rule({ endpointSelector: dbSelector, egress: [{ toEntities: ["world"] }] }));
    expect([c.ingress(db, WORLD, "TCP", 80), c.egress(db, WORLD, "TCP", 80), c.egress(db, HOST, "TCP", 80)]).toEqual(["allow", "allow", "deny"]);
  });

  test("deny sections alone turn on default deny (upstream Rule.Sanitize)", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingressDeny: [{ fromEntities: ["world"] }] }));
    expect([c.ingress(db, WORLD, "TCP", 80), c.ingress(db, web, "TCP", 80)]).toEqual(["deny", "deny"]);
  });

  test("enableDefaultDeny false makes allows additive and keeps denies", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, enableDefaultDeny: { ingress: false }, ingress: [{ fromEndpoints: [webPeer] }], ingressDeny: [{ fromEntities: ["world"] }] }));
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, HOST, "TCP", 80), c.ingress(db, WORLD, "TCP", 80)]).toEqual(["allow", "allow", "deny"]);
    expect(c.policy(db).enforced("ingress")).toBe(false);
  });

  test("one rule with default deny is enough, even next to a non-default-deny rule", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply([
      { endpointSelector: {}, enableDefaultDeny: { ingress: false, egress: false }, ingress: [{ fromEntities: ["host"] }] },
      { endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer] }] },
    ]);
    expect([c.ingress(db, web, "TCP", 1), c.ingress(db, HOST, "TCP", 1), c.ingress(db, WORLD, "TCP", 1)]).toEqual(["allow", "allow", "deny"]);
    expect(c.ingress(web, WORLD, "TCP", 1)).toBe("allow");
  });

  test("enableDefaultDeny true without sections closes that direction", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    c.apply(rule({ endpointSelector: dbSelector, enableDefaultDeny: { egress: true } }));
    expect([c.egress(db, WORLD, "UDP", 53), c.ingress(db, WORLD, "TCP", 80)]).toEqual(["deny", "allow"]);
  });

  test("an empty ingress list does not turn on default deny; [{}] does", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [] }));
    expect(c.ingress(db, WORLD, "TCP", 80)).toBe("allow");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{}] }));
    expect(c.ingress(db, WORLD, "TCP", 80)).toBe("deny");
  });

  test("always: every endpoint is default-deny, rules still allow", () => {
    const c = new Cluster({ enforcement: "always" });
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer] }] }));
    expect([c.ingress(db, web, "TCP", 80), c.ingress(db, WORLD, "TCP", 80), c.egress(db, web, "TCP", 80)]).toEqual(["allow", "deny", "deny"]);
    expect([c.ingress(web, db, "TCP", 80), c.egress(web, db, "TCP", 80)]).toEqual(["deny", "deny"]);
    expect(c.policy(web).state.size).toBe(0);
  });

  test("never: everything passes, deny rules included", () => {
    const c = new Cluster({ enforcement: "never" });
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer] }], ingressDeny: [{ fromEntities: ["world"] }] }));
    expect([c.ingress(db, WORLD, "TCP", 80), c.ingress(db, web, "UDP", 1), c.egress(db, WORLD, "TCP", 443)]).toEqual(["allow", "allow", "allow"]);
    expect(c.policy(db).state.size).toBe(2);
  });

  test("allow-localhost opens enforced ingress to the host, unless denied", () => {
    const c = new Cluster({ allowLocalhost: true });
    const db = c.pod("prod", "app=db");
    c.apply(rule({ endpointSelector: dbSelector, ingress: [{}], egress: [{}] }));
    expect([c.ingress(db, HOST, "TCP", 8080), c.ingress(db, REMOTE_NODE, "TCP", 8080), c.egress(db, HOST, "TCP", 8080)]).toEqual(["allow", "deny", "deny"]);
    c.apply(rule({ endpointSelector: dbSelector, ingressDeny: [{ fromEntities: ["host"], toPorts: [{ ports: [{ port: "22", protocol: "TCP" }] }] }] }));
    expect([c.ingress(db, HOST, "TCP", 22), c.ingress(db, HOST, "TCP", 8080)]).toEqual(["deny", "allow"]);
  });
});

describe("namespaces", () => {
  const cnp = (namespace: string, spec: string) => `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: p
  namespace: ${namespace}
spec:
${spec}`;

  const setup = () => {
    const c = new Cluster();
    return { c, prodDb: c.pod("prod", "app=db"), devDb: c.pod("dev", "app=db"), prodWeb: c.pod("prod", "app=web"), devWeb: c.pod("dev", "app=web") };
  };

  test("a namespaced policy selects its namespace's endpoints and peers only", () => {
    const { c, prodDb, devDb, prodWeb, devWeb } = setup();
    c.apply(cnp("prod", "  endpointSelector: {matchLabels: {app: db}}\n  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]"));
    expect([c.ingress(prodDb, prodWeb, "TCP", 1), c.ingress(prodDb, devWeb, "TCP", 1)]).toEqual(["allow", "deny"]);
    expect(c.ingress(devDb, devWeb, "TCP", 1)).toBe("allow");
    expect(c.ingress(devDb, WORLD, "TCP", 1)).toBe("allow"); // not selected: not enforced
  });

  test("a peer selector that names the namespace keeps it", () => {
    const { c, prodDb, prodWeb, devWeb } = setup();
    c.apply(cnp("prod", "  endpointSelector: {matchLabels: {app: db}}\n  ingress: [{fromEndpoints: [{matchLabels: {app: web, k8s:io.kubernetes.pod.namespace: dev}}]}]"));
    expect([c.ingress(prodDb, devWeb, "TCP", 1), c.ingress(prodDb, prodWeb, "TCP", 1)]).toEqual(["allow", "deny"]);
  });

  test("a source-less namespace key counts too; Exists on it opens every namespace", () => {
    const { c, prodDb, prodWeb, devWeb } = setup();
    c.apply(cnp("prod", "  endpointSelector: {matchLabels: {app: db}}\n  ingress: [{fromEndpoints: [{matchExpressions: [{key: io.kubernetes.pod.namespace, operator: Exists}]}]}]"));
    expect([c.ingress(prodDb, devWeb, "TCP", 1), c.ingress(prodDb, prodWeb, "TCP", 1), c.ingress(prodDb, WORLD, "TCP", 1)]).toEqual(["allow", "allow", "deny"]);
  });

  test("{} in a namespaced policy is every pod of the namespace, not the world", () => {
    const { c, prodDb, prodWeb, devWeb } = setup();
    c.apply(cnp("prod", "  endpointSelector: {}\n  ingress: [{fromEndpoints: [{}]}]"));
    expect([c.ingress(prodDb, prodWeb, "TCP", 1), c.ingress(prodDb, devWeb, "TCP", 1), c.ingress(prodDb, WORLD, "TCP", 1), c.ingress(prodDb, HOST, "TCP", 1)]).toEqual([
      "allow",
      "deny",
      "deny",
      "deny",
    ]);
  });

  test("reserved peers are not scoped; entities and CIDRs neither", () => {
    const { c, prodDb } = setup();
    c.apply(cnp("prod", '  endpointSelector: {matchLabels: {app: db}}\n  ingress: [{fromEndpoints: [{matchLabels: {"reserved:host": ""}}]}, {fromEntities: [remote-node]}, {fromCIDR: [192.0.2.0/24]}]'));
    expect([c.ingress(prodDb, HOST, "TCP", 1), c.ingress(prodDb, REMOTE_NODE, "TCP", 1), c.ingress(prodDb, c.cidr("192.0.2.0/24"), "TCP", 1)]).toEqual(["allow", "allow", "allow"]);
  });

  test("an endpointSelector naming another namespace still applies in the policy's own", () => {
    const { c, prodDb, devDb } = setup();
    c.apply(cnp("prod", "  endpointSelector: {matchLabels: {app: db, k8s:io.kubernetes.pod.namespace: dev}}\n  ingress: [{}]"));
    expect([c.ingress(prodDb, WORLD, "TCP", 1), c.ingress(devDb, WORLD, "TCP", 1)]).toEqual(["deny", "allow"]);
  });

  test("a clusterwide policy selects in every namespace; its {} peer is every pod", () => {
    const { c, prodDb, devDb, prodWeb, devWeb } = setup();
    c.apply(`
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: p}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{}]}]`);
    expect([c.ingress(prodDb, devWeb, "TCP", 1), c.ingress(devDb, prodWeb, "TCP", 1), c.ingress(prodDb, WORLD, "TCP", 1), c.ingress(prodDb, HOST, "TCP", 1)]).toEqual([
      "allow",
      "allow",
      "deny",
      "deny",
    ]);
  });

  test("a policy for initializing endpoints (reserved:init) is not scoped", () => {
    const c = new Cluster();
    const web = c.pod("prod", "app=web");
    c.apply(cnp("prod", '  endpointSelector: {matchLabels: {"reserved:init": ""}}\n  egress: [{toEndpoints: [{matchLabels: {app: web}}]}]'));
    expect([c.egress(INIT, web, "TCP", 1), c.egress(INIT, WORLD, "TCP", 1)]).toEqual(["allow", "deny"]);
  });
});

describe("Kubernetes NetworkPolicy", () => {
  const np = (spec: string, namespace = "prod") => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: ${namespace}}
spec:
${spec}`;

  const setup = () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    const devWeb = c.pod("dev", "app=web");
    const teamPod = c.identity(["k8s:app=tool", `${NS}=tools`, "k8s:io.cilium.k8s.namespace.labels.team=blue"]);
    const otherTeamPod = c.identity(["k8s:app=web", `${NS}=ops`, "k8s:io.cilium.k8s.namespace.labels.team=red"]);
    return { c, db, web, devWeb, teamPod, otherTeamPod };
  };

  test("podSelector peers are in the policy's namespace; ports restrict", () => {
    const { c, db, web, devWeb } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{protocol: TCP, port: 5432}]}]"));
    expect([c.ingress(db, web, "TCP", 5432), c.ingress(db, web, "TCP", 5433), c.ingress(db, devWeb, "TCP", 5432), c.ingress(db, WORLD, "TCP", 5432)]).toEqual([
      "allow",
      "deny",
      "deny",
      "deny",
    ]);
  });

  test("namespaceSelector matches namespace labels in any namespace; with podSelector both must match", () => {
    const { c, db, web, teamPod, otherTeamPod } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}, {namespaceSelector: {matchLabels: {team: red}}, podSelector: {matchLabels: {app: api}}}]}]"));
    expect([c.ingress(db, teamPod, "TCP", 1), c.ingress(db, otherTeamPod, "TCP", 1), c.ingress(db, web, "TCP", 1)]).toEqual(["allow", "deny", "deny"]);
  });

  test("an empty namespaceSelector is every pod of every namespace, not the world", () => {
    const { c, db, web, devWeb, teamPod } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{namespaceSelector: {}}]}]"));
    expect([c.ingress(db, web, "TCP", 1), c.ingress(db, devWeb, "TCP", 1), c.ingress(db, teamPod, "TCP", 1), c.ingress(db, WORLD, "TCP", 1), c.ingress(db, HOST, "TCP", 1)]).toEqual([
      "allow",
      "allow",
      "allow",
      "deny",
      "deny",
    ]);
  });

  test("ipBlock with except, both sides of the boundary", () => {
    const { c, db } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{ipBlock: {cidr: 172.16.0.0/12, except: [172.20.0.0/16]}}]}]"));
    expect([c.ingress(db, c.cidr("172.16.0.0/12"), "TCP", 1), c.ingress(db, c.cidr("172.19.255.0/24"), "TCP", 1), c.ingress(db, c.cidr("172.20.0.0/16"), "TCP", 1), c.ingress(db, c.cidr("172.20.9.0/24"), "TCP", 1), c.ingress(db, c.cidr("172.21.0.0/24"), "TCP", 1)]).toEqual([
      "allow",
      "allow",
      "deny",
      "deny",
      "allow",
    ]);
  });

  test("ports: endPort ranges, protocol default TCP, no port = every port", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{podSelector: {}}], ports: [{port: 32000, endPort: 32768}, {protocol: UDP}]}]"));
    expect([c.ingress(db, web, "TCP", 31999), c.ingress(db, web, "TCP", 32000), c.ingress(db, web, "TCP", 32768), c.ingress(db, web, "TCP", 32769), c.ingress(db, web, "UDP", 32769), c.ingress(db, web, "UDP", 7), c.ingress(db, web, "SCTP", 32000)]).toEqual([
      "deny",
      "allow",
      "allow",
      "deny",
      "allow",
      "allow",
      "deny",
    ]);
  });

  test("policyTypes [Ingress] with no rules denies all ingress and leaves egress", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {}\n  policyTypes: [Ingress]"));
    expect([c.ingress(db, web, "TCP", 1), c.ingress(web, db, "TCP", 1), c.egress(db, WORLD, "TCP", 1)]).toEqual(["deny", "deny", "allow"]);
  });

  test("an explicitly empty ingress list with policyTypes Ingress denies all ingress", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Ingress, Egress]\n  ingress: []\n  egress: [{}]"));
    expect([c.ingress(db, web, "TCP", 1), c.ingress(db, WORLD, "TCP", 1), c.egress(db, WORLD, "UDP", 53)]).toEqual(["deny", "deny", "allow"]);
  });

  test("policyTypes [Egress] only: egress denied, ingress untouched", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Egress]"));
    expect([c.egress(db, web, "TCP", 1), c.ingress(db, web, "TCP", 1)]).toEqual(["deny", "allow"]);
  });

  test("no policyTypes and only egress rules: ingress is still denied (it always applies)", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  egress: [{to: [{podSelector: {matchLabels: {app: web}}}]}]"));
    expect([c.egress(db, web, "TCP", 1), c.egress(db, WORLD, "TCP", 1), c.ingress(db, web, "TCP", 1)]).toEqual(["allow", "deny", "deny"]);
  });

  test("an ingress rule without from allows every source, world included", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  ingress: [{}]"));
    expect([c.ingress(db, web, "TCP", 1), c.ingress(db, WORLD, "UDP", 9), c.ingress(db, c.cidr("192.0.2.0/24"), "TCP", 1)]).toEqual(["allow", "allow", "allow"]);
  });

  test("an egress rule with ports and no to allows every destination on those ports", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Egress]\n  egress: [{ports: [{port: 53, protocol: UDP}]}]"));
    expect([c.egress(db, web, "UDP", 53), c.egress(db, WORLD, "UDP", 53), c.egress(db, WORLD, "TCP", 53)]).toEqual(["allow", "allow", "deny"]);
  });

  test("egress to 0.0.0.0/0 except a private range", () => {
    const { c, db, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Egress]\n  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}]"));
    expect([c.egress(db, WORLD, "TCP", 443), c.egress(db, c.cidr("10.9.0.0/16"), "TCP", 443), c.egress(db, web, "TCP", 443)]).toEqual(["allow", "deny", "deny"]);
  });

  test("the policy's podSelector only selects in its namespace", () => {
    const { c, devWeb, web } = setup();
    c.apply(np("  podSelector: {matchLabels: {app: web}}\n  ingress: [{}]\n  policyTypes: [Ingress, Egress]"));
    expect([c.egress(web, WORLD, "TCP", 1), c.egress(devWeb, WORLD, "TCP", 1)]).toEqual(["deny", "allow"]);
  });
});

describe("revocation and repository changes", () => {
  test("deleting a rule removes its allows", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    const api = c.pod("prod", "app=api");
    c.apply([
      { endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer] }], labels: ["k8s:policy=web"] },
      { endpointSelector: dbSelector, ingress: [{ fromEndpoints: [{ matchLabels: { app: "api" } }] }], labels: ["k8s:policy=api"] },
    ]);
    const before = c.policy(db);
    expect([c.ingress(db, web, "TCP", 1), c.ingress(db, api, "TCP", 1)]).toEqual(["allow", "allow"]);
    const change = c.repo.deleteByLabels(LabelSet.parse(["k8s:policy=web"]));
    expect(change).toEqual({ revision: before.revision + 1, added: 0, removed: 1 });
    expect([c.ingress(db, web, "TCP", 1), c.ingress(db, api, "TCP", 1)]).toEqual(["deny", "allow"]);
    expect(c.repo.deleteByLabels(LabelSet.parse(["k8s:policy=nothing"])).removed).toBe(0);
    expect(() => c.repo.deleteByLabels(LabelSet.empty)).toThrow("needs at least one label");
    c.repo.deleteAll();
    expect(c.ingress(db, web, "TCP", 1)).toBe("allow"); // nothing selects db any more
  });

  test("replacing a policy by its labels swaps its rules in one revision", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    const api = c.pod("prod", "app=api");
    const policy = (app: string) => `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db, namespace: prod}
spec: {endpointSelector: {matchLabels: {app: db}}, ingress: [{fromEndpoints: [{matchLabels: {app: ${app}}}]}]}`;
    c.apply(policy("web"));
    const name = LabelSet.parse(["k8s:io.cilium.k8s.policy.name=db", "k8s:io.cilium.k8s.policy.namespace=prod"]);
    const change = c.repo.add(parsePolicyText(policy("api")), { replaceWithLabels: name });
    expect([change.added, change.removed, c.repo.size]).toEqual([1, 1, 1]);
    expect([c.ingress(db, web, "TCP", 1), c.ingress(db, api, "TCP", 1)]).toEqual(["deny", "allow"]);
  });

  test("selectors of deleted rules leave the selector cache", () => {
    const c = new Cluster();
    c.apply([{ endpointSelector: dbSelector, ingress: [{ fromEndpoints: [webPeer] }], labels: ["x"] }]);
    expect(c.cache.selectorCount).toBe(1);
    c.repo.deleteByLabels(LabelSet.parse(["x"]));
    expect(c.cache.selectorCount).toBe(0);
  });
});

describe("incremental identity changes", () => {
  const setup = () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    const web = c.pod("prod", "app=web");
    c.apply(
      rule({
        endpointSelector: dbSelector,
        ingress: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "5432", protocol: "TCP" }] }] }, { toPorts: [{ ports: [{ port: "80", protocol: "TCP" }] }] }],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { quarantine: "yes" } }] }],
      }),
    );
    return { c, db, web };
  };

  test("a new peer identity gets its entries without re-resolving", () => {
    const { c, db } = setup();
    const policy = c.policy(db);
    const web2 = c.pod("dev", "app=web");
    expect(lookupVerdict(policy.state, web2, "ingress", 6, 5432)).toBe("deny");
    const ops = policy.updateIdentities([web2]);
    expect(ops).toEqual([{ op: "put", entry: { identity: web2, direction: "ingress", protocol: 6, port: 5432, prefixLength: 16, deny: false } }]);
    expect(lookupVerdict(policy.state, web2, "ingress", 6, 5432)).toBe("allow");
    expect(lookupVerdict(policy.state, web2, "ingress", 6, 80)).toBe("allow");
    expect([...policy.state.keys()].sort()).toEqual([...c.policy(db).state.keys()].sort());
  });

  test("an identity that goes away loses its entries", () => {
    const { c, db, web } = setup();
    const policy = c.policy(db);
    c.cache.removeIdentity(web);
    const ops = policy.updateIdentities([web]);
    expect(ops).toEqual([{ op: "delete", entry: { identity: web, direction: "ingress", protocol: 6, port: 5432, prefixLength: 16, deny: false } }]);
    expect(lookupVerdict(policy.state, web, "ingress", 6, 5432)).toBe("deny");
  });

  test("changed labels turn an allow into a deny, deny entries first", () => {
    const { c, db, web } = setup();
    const policy = c.policy(db);
    c.cache.upsertIdentity(web, LabelSet.parse(["k8s:app=web", "k8s:quarantine=yes", `${NS}=prod`]));
    const ops = policy.updateIdentities([web]);
    // The deny for every port also needs its own entry at TCP/80, where the allow for any identity
    // is narrower and would otherwise win the lookup.
    expect(ops.map((o) => `${o.op} ${policyKey(o.entry)} ${o.entry.deny ? "deny" : "allow"}`)).toEqual([
      `put 0:${web}:0/0/0 deny`,
      `put 0:${web}:6/80/16 deny`,
      `delete 0:${web}:6/5432/16 allow`,
    ]);
    expect(lookupVerdict(policy.state, web, "ingress", 6, 80)).toBe("deny");
    expect([...policy.state.keys()].sort()).toEqual([...c.policy(db).state.keys()].sort());
  });

  test("a new CIDR identity: inside the except stays denied, outside it is allowed", () => {
    const c = new Cluster();
    const web = c.pod("prod", "app=web");
    c.apply(rule({ endpointSelector: webPeer, egress: [{ toCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.96.0.0/12"] }] }] }));
    const policy = c.policy(web);
    const inside = c.cidr("10.96.4.0/24");
    const outside = c.cidr("10.200.0.0/16");
    expect(policy.updateIdentities([inside, outside]).map((o) => [o.op, o.entry.identity, o.entry.deny])).toEqual([["put", outside, false]]);
    expect([lookupVerdict(policy.state, inside, "egress", 6, 1), lookupVerdict(policy.state, outside, "egress", 6, 1)]).toEqual(["deny", "allow"]);
  });

  test("any sequence of identity changes ends where a fresh resolution starts", () => {
    const c = new Cluster();
    const db = c.pod("prod", "app=db");
    c.apply(
      rule({
        endpointSelector: dbSelector,
        ingress: [{ fromEndpoints: [webPeer], toPorts: [{ ports: [{ port: "5432", protocol: "TCP" }] }] }, { fromEntities: ["cluster"], toPorts: [{ ports: [{ port: "80", endPort: 90, protocol: "TCP" }] }] }],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { quarantine: "yes" } }], toPorts: [{ ports: [{ port: "85", protocol: "TCP" }] }] }],
        egress: [{ toEndpoints: [{ matchExpressions: [{ key: "tier", operator: "In", values: ["back"] }] }] }],
        egressDeny: [{ toCIDR: ["10.0.0.0/8"] }],
      }),
    );
    const policy = c.policy(db);
    const ids: number[] = [];
    const variants = [["app=web"], ["app=web", "quarantine=yes"], ["tier=back"], ["app=web", "tier=back"], ["app=other"]];
    for (let step = 0; step < 40; step++) {
      const kind = step % 4;
      let changed: number;
      if (kind === 0 || ids.length === 0) {
        changed = c.pod(step % 3 === 0 ? "dev" : "prod", ...variants[step % variants.length]!);
        ids.push(changed);
      } else if (kind === 1) {
        changed = ids[step % ids.length]!;
        c.cache.upsertIdentity(changed, LabelSet.parse([...variants[(step * 7) % variants.length]!.map((l) => `k8s:${l}`), `${NS}=prod`]));
      } else if (kind === 2) {
        changed = c.cidr(`10.${step}.0.0/16`);
      } else {
        changed = ids.splice(step % ids.length, 1)[0]!;
        c.cache.removeIdentity(changed);
      }
      policy.updateIdentities([changed]);
      const fresh = c.policy(db).state;
      expect(new Map([...policy.state].sort(([a], [b]) => (a < b ? -1 : 1)))).toEqual(new Map([...fresh].sort(([a], [b]) => (a < b ? -1 : 1))));
    }
  });

  test("an identity no rule selects changes nothing", () => {
    const { c, db } = setup();
    const policy = c.policy(db);
    const size = policy.state.size;
    expect(policy.updateIdentities([c.pod("prod", "app=unrelated"), 0])).toEqual([]);
    expect(policy.state.size).toBe(size);
  });
});

describe("repository changes and the rules an endpoint was resolved from", () => {
  const rules = (text: string) => parsePolicyText(text);
  const labels = LabelSet.parse([`${NS}=shop`, "k8s:app=web"]);
  const OPTIONS: ResolveOptions = { enforcement: "default" };

  test("replaceAll keeps the stored form of rules handed back, so an endpoint they alone select is resolved from the same rules", () => {
    const cache = new SelectorCache();
    const repo = new Repository(cache);
    repo.replaceAll(rules(`[{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{"fromEntities":["world"]}],"labels":["r=a"]},
                            {"endpointSelector":{"matchLabels":{"app":"db"}},"ingress":[{"fromEntities":["host"]}],"labels":["r=b"]}]`));
    const web = resolvePolicy(repo, cache, labels, OPTIONS);
    const [a, b] = repo.rules().map((s) => s.compiled.rule);

    // Rule b changes (a new object in its place): web still has exactly the rules it was resolved from.
    expect(repo.replaceAll([a!, ...rules(`[{"endpointSelector":{"matchLabels":{"app":"db"}},"ingress":[{"fromEntities":["world"]}],"labels":["r=b"]}]`)]).revision).toBe(3);
    expect(web.resolvedFrom(repo.selecting(labels))).toBe(true);
    expect(repo.rules()[0]!.revision).toBe(2);

    // The same text as rule a, imported again, is a new rule: web must be resolved again.
    repo.replaceAll([...rules(`[{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{"fromEntities":["world"]}],"labels":["r=a"]}]`), b!]);
    expect(web.resolvedFrom(repo.selecting(labels))).toBe(false);
  });

  test("a rule that starts or stops selecting the endpoint changes its rules; an unchanged list is no new revision", () => {
    const cache = new SelectorCache();
    const repo = new Repository(cache);
    repo.replaceAll(rules(`[{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{}],"labels":["r=a"]}]`));
    const web = resolvePolicy(repo, cache, labels, OPTIONS);
    const current = repo.rules().map((s) => s.compiled.rule);
    expect(repo.replaceAll(current).revision).toBe(2);
    const added = [...current, ...rules(`[{"endpointSelector":{},"egress":[{}],"labels":["r=all"]}]`)];
    repo.replaceAll(added);
    expect(web.resolvedFrom(repo.selecting(labels))).toBe(false);
    repo.replaceAll(current);
    expect(web.resolvedFrom(repo.selecting(labels))).toBe(true);
    repo.replaceAll([]);
    expect(web.resolvedFrom(repo.selecting(labels))).toBe(false);
  });
});
