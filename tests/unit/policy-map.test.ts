import { describe, expect, test } from "bun:test";
import { LabelSet } from "../../src/identity/labels.ts";
import { RESERVED_IDENTITIES } from "../../src/identity/reserved.ts";
import { diffMapState, type MapOp } from "../../src/policy/diff.ts";
import { lookupVerdict, lpmPrefixLength, policyKey, type MapState, type PolicyEntry } from "../../src/policy/map-state.ts";
import { parsePolicyText } from "../../src/policy/parse.ts";
import { formatPortPrefix, portPrefixCovers, portRangePrefixes } from "../../src/policy/ports.ts";
import { Repository } from "../../src/policy/repository.ts";
import { resolvePolicy } from "../../src/policy/resolve.ts";
import { SelectorCache } from "../../src/policy/selector-cache.ts";

const range = (first: number, last: number) => portRangePrefixes(first, last).map((p) => `${p.port}/${p.prefixLength}`);

describe("port ranges as prefixes", () => {
  test("minimal aligned blocks, written out", () => {
    expect(range(80, 80)).toEqual(["80/16"]);
    expect(range(80, 83)).toEqual(["80/14"]);
    expect(range(80, 90)).toEqual(["80/13", "88/15", "90/16"]);
    expect(range(1024, 65535)).toEqual(["1024/6", "2048/5", "4096/4", "8192/3", "16384/2", "32768/1"]);
    expect(range(1, 65535)).toEqual([
      "1/16",
      "2/15",
      "4/14",
      "8/13",
      "16/12",
      "32/11",
      "64/10",
      "128/9",
      "256/8",
      "512/7",
      "1024/6",
      "2048/5",
      "4096/4",
      "8192/3",
      "16384/2",
      "32768/1",
    ]);
    expect(range(0, 65535)).toEqual(["0/0"]);
    expect(range(65535, 65535)).toEqual(["65535/16"]);
    expect(range(32000, 32768)).toEqual(["32000/8", "32256/7", "32768/16"]);
  });

  test("8000-8010 is 8000/13 (8000-8007), 8008/15 (8008-8009), 8010/16", () => {
    expect(range(8000, 8010)).toEqual(["8000/13", "8008/15", "8010/16"]);
  });

  test("every port of a range is covered exactly once, nothing outside", () => {
    for (const [first, last] of [
      [1, 1000],
      [8000, 8010],
      [32000, 32768],
      [65000, 65535],
    ] as const) {
      const blocks = portRangePrefixes(first, last).map((b) => ({ protocol: 6, ...b }));
      for (const port of [first - 1, first, Math.floor((first + last) / 2), last, last + 1]) {
        const hits = blocks.filter((b) => portPrefixCovers(b, { protocol: 6, port, prefixLength: 16 })).length;
        expect(hits).toBe(port >= first && port <= last ? 1 : 0);
      }
    }
  });

  test("formatting and LPM prefix lengths (40 static bits + protocol 8 + port bits)", () => {
    expect(formatPortPrefix({ protocol: 0, port: 0, prefixLength: 0 })).toBe("ANY");
    expect(formatPortPrefix({ protocol: 6, port: 0, prefixLength: 0 })).toBe("TCP");
    expect(formatPortPrefix({ protocol: 17, port: 53, prefixLength: 16 })).toBe("UDP/53");
    expect(formatPortPrefix({ protocol: 6, port: 80, prefixLength: 14 })).toBe("TCP/80-83");
    expect(formatPortPrefix({ protocol: 1, port: 8, prefixLength: 16 })).toBe("ICMP/8");
    expect(lpmPrefixLength({ protocol: 0, port: 0, prefixLength: 0 })).toBe(40);
    expect(lpmPrefixLength({ protocol: 6, port: 0, prefixLength: 0 })).toBe(48);
    expect(lpmPrefixLength({ protocol: 6, port: 80, prefixLength: 16 })).toBe(64);
    expect(lpmPrefixLength({ protocol: 6, port: 80, prefixLength: 14 })).toBe(62);
  });
});

const entry = (identity: number, protocol: number, port: number, prefixLength: number, deny: boolean, direction: "ingress" | "egress" = "ingress"): PolicyEntry => ({
  identity,
  direction,
  protocol,
  port,
  prefixLength,
  deny,
});
const state = (...entries: PolicyEntry[]): MapState => new Map(entries.map((e) => [policyKey(e), e]));
const describeEntries = (s: MapState) => [...s.values()].map((e) => `${e.direction} ${e.identity} ${formatPortPrefix(e)} ${e.deny ? "deny" : "allow"}`).sort();

describe("the datapath lookup contract", () => {
  test("no entry is a drop", () => {
    expect(lookupVerdict(state(), 300, "ingress", 6, 80)).toBe("deny");
  });

  test("longest prefix wins across the identity's and the any-identity entries", () => {
    const s = state(entry(300, 0, 0, 0, false), entry(0, 6, 80, 16, true));
    expect(lookupVerdict(s, 300, "ingress", 6, 80)).toBe("deny");
    expect(lookupVerdict(s, 300, "ingress", 6, 81)).toBe("allow");
    expect(lookupVerdict(s, 301, "ingress", 6, 81)).toBe("deny");
  });

  test("on equal length the identity's own entry wins", () => {
    const s = state(entry(300, 6, 80, 16, true), entry(0, 6, 80, 16, false));
    expect(lookupVerdict(s, 300, "ingress", 6, 80)).toBe("deny");
    expect(lookupVerdict(s, 301, "ingress", 6, 80)).toBe("allow");
  });

  test("directions are separate", () => {
    const s = state(entry(0, 0, 0, 0, false, "egress"));
    expect(lookupVerdict(s, 300, "egress", 17, 53)).toBe("allow");
    expect(lookupVerdict(s, 300, "ingress", 17, 53)).toBe("deny");
  });
});

describe("resolved entries, written out", () => {
  const web = LabelSet.parse(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=prod"]);
  const db = LabelSet.parse(["k8s:app=db", "k8s:io.kubernetes.pod.namespace=prod"]);
  const entriesFor = (rules: object[], enforcement: "default" | "always" | "never" = "default", allowLocalhost = false) => {
    const cache = new SelectorCache();
    for (const r of RESERVED_IDENTITIES) cache.upsertIdentity(r.id, r.labels);
    cache.upsertIdentity(300, web);
    cache.upsertIdentity(301, db);
    const repo = new Repository(cache);
    repo.add(parsePolicyText(JSON.stringify(rules)));
    return describeEntries(resolvePolicy(repo, cache, db, { enforcement, allowLocalhost }).state);
  };
  const db$ = { matchLabels: { app: "db" } };
  const web$ = { matchLabels: { app: "web" } };

  test("no rule: allow-all in both directions", () => {
    expect(entriesFor([{ endpointSelector: web$, ingress: [{}] }])).toEqual(["egress 0 ANY allow", "ingress 0 ANY allow"]);
  });

  test("L4 allow with a range: one entry per protocol block", () => {
    expect(entriesFor([{ endpointSelector: db$, ingress: [{ fromEndpoints: [web$], toPorts: [{ ports: [{ port: "80", endPort: 83, protocol: "TCP" }, { port: "5432", protocol: "TCP" }] }] }] }])).toEqual([
      "egress 0 ANY allow",
      "ingress 300 TCP/5432 allow",
      "ingress 300 TCP/80-83 allow",
    ]);
  });

  test("deny L3 for a peer against an any-identity allow on TCP/80", () => {
    expect(entriesFor([{ endpointSelector: db$, ingress: [{ toPorts: [{ ports: [{ port: "80", protocol: "TCP" }] }] }], ingressDeny: [{ fromEndpoints: [web$] }] }])).toEqual([
      "egress 0 ANY allow",
      "ingress 0 TCP/80 allow",
      "ingress 300 ANY deny",
      "ingress 300 TCP/80 deny",
    ]);
  });

  test("an allow inside a deny is not written; an any-identity duplicate is not written", () => {
    expect(
      entriesFor([
        {
          endpointSelector: db$,
          ingress: [{ fromEndpoints: [web$], toPorts: [{ ports: [{ port: "80", protocol: "TCP" }] }] }, { fromEntities: ["all"] }, { fromEndpoints: [web$] }],
          ingressDeny: [{ fromEndpoints: [web$], toPorts: [{ ports: [{ port: "0", protocol: "TCP" }] }] }],
        },
      ]),
    ).toEqual(["egress 0 ANY allow", "ingress 0 ANY allow", "ingress 300 TCP deny"]);
  });

  test("unenforced direction: allow-all plus the denies", () => {
    expect(entriesFor([{ endpointSelector: db$, enableDefaultDeny: { ingress: false }, ingress: [{ fromEndpoints: [web$] }], ingressDeny: [{ fromEntities: ["world"] }] }])).toEqual([
      "egress 0 ANY allow",
      "ingress 0 ANY allow",
      "ingress 2 ANY deny",
    ]);
  });

  test("always with no rule: an empty map; allow-localhost adds the host", () => {
    expect(entriesFor([{ endpointSelector: web$, ingress: [{}] }], "always")).toEqual([]);
    expect(entriesFor([{ endpointSelector: web$, ingress: [{}] }], "always", true)).toEqual(["ingress 1 ANY allow"]);
  });

  test("never: allow-all only", () => {
    expect(entriesFor([{ endpointSelector: db$, ingressDeny: [{ fromEntities: ["all"] }] }], "never")).toEqual(["egress 0 ANY allow", "ingress 0 ANY allow"]);
  });

  test("ICMP types sit in the port field", () => {
    expect(entriesFor([{ endpointSelector: db$, egress: [{ toEndpoints: [web$], icmps: [{ fields: [{ type: "EchoRequest" }] }] }] }])).toEqual([
      "egress 300 ICMP/8 allow",
      "ingress 0 ANY allow",
    ]);
  });
});

describe("diffs", () => {
  const a = entry(300, 6, 80, 16, false);
  const b = entry(301, 6, 80, 16, false);
  const d = entry(302, 0, 0, 0, true);
  const flipped = { ...a, deny: true };

  test("only differences, in the safe order: put deny, delete allow, put allow, delete deny", () => {
    const ops = diffMapState(state(a, d), state(flipped, b));
    const text = (o: MapOp) => `${o.op} ${policyKey(o.entry)} ${o.entry.deny ? "deny" : "allow"}`;
    expect(ops.map(text)).toEqual(["put 0:300:6/80/16 deny", "put 0:301:6/80/16 allow", "delete 0:302:0/0/0 deny"]);
    expect(diffMapState(state(a, b), state(b))).toEqual([{ op: "delete", entry: a }]);
    expect(diffMapState(state(a, b), state(b, a))).toEqual([]);
    expect(diffMapState(state(), state(d, a)).map((o) => o.entry)).toEqual([d, a]);
  });

  test("no intermediate state allows what both ends deny; after the deny puts and allow deletes, only what both allow", () => {
    const old = state(entry(0, 0, 0, 0, false), entry(300, 6, 22, 16, true), entry(303, 6, 80, 16, false));
    const next = state(entry(0, 6, 443, 16, false), entry(301, 0, 0, 0, true), entry(301, 6, 443, 16, true), entry(303, 6, 80, 16, false));
    const probes = [
      [300, 6, 22],
      [300, 6, 443],
      [301, 6, 443],
      [302, 17, 53],
      [303, 6, 80],
      [303, 6, 81],
    ] as const;
    const allowed = (s: MapState) => probes.filter(([id, proto, port]) => lookupVerdict(s, id, "ingress", proto, port) === "allow").map((p) => p.join("/"));
    // Written out: old allows everything but 300 TCP/22; new allows TCP/443 for all but 301, and 303 TCP/80.
    expect(allowed(old)).toEqual(["300/6/443", "301/6/443", "302/17/53", "303/6/80", "303/6/81"]);
    expect(allowed(next)).toEqual(["300/6/443", "303/6/80"]);
    const current = new Map(old);
    const ops = diffMapState(old, next);
    ops.forEach((op, i) => {
      if (op.op === "put") current.set(policyKey(op.entry), op.entry);
      else current.delete(policyKey(op.entry));
      for (const probe of allowed(current)) expect(allowed(old).includes(probe) || allowed(next).includes(probe)).toBe(true);
      const nextOp = ops[i + 1];
      if (nextOp && nextOp.op === "put" && !nextOp.entry.deny && !(op.op === "put" && !op.entry.deny)) {
        for (const probe of allowed(current)) expect(allowed(old).includes(probe) && allowed(next).includes(probe)).toBe(true);
        expect(allowed(current)).toEqual(["303/6/80"]);
      }
    });
    expect(describeEntries(current)).toEqual(describeEntries(next));
  });
});
