import { describe, expect, test } from "bun:test";
import { LabelSet } from "../../src/identity/labels.ts";
import { Issues } from "../../src/policy/fields.ts";
import { SelectorCache } from "../../src/policy/selector-cache.ts";
import { EndpointSelector } from "../../src/policy/selector.ts";
import { readSelector } from "../../src/policy/values.ts";

/** A selector from its CNP form; fails the test on a validation problem. */
function sel(value: unknown): EndpointSelector {
  const issues = new Issues();
  const s = readSelector(value, "s", issues);
  expect(issues.list).toEqual([]);
  return s!;
}

const labels = (...texts: string[]) => LabelSet.parse(texts);
const web = labels("k8s:app=web", "k8s:tier=front", "k8s:io.kubernetes.pod.namespace=prod");
const db = labels("k8s:app=db", "k8s:tier=back", "k8s:io.kubernetes.pod.namespace=prod");
const legacy = labels("container:app=web", "unspec:owner=ops");
const host = labels("reserved:host");

describe("selector matching", () => {
  test("matchLabels: source-less keys match any source, k8s: only k8s", () => {
    expect(sel({ matchLabels: { app: "web" } }).matches(web)).toBe(true);
    expect(sel({ matchLabels: { app: "web" } }).matches(legacy)).toBe(true);
    expect(sel({ matchLabels: { "k8s:app": "web" } }).matches(web)).toBe(true);
    expect(sel({ matchLabels: { "k8s:app": "web" } }).matches(legacy)).toBe(false);
    expect(sel({ matchLabels: { "container:app": "web" } }).matches(legacy)).toBe(true);
    expect(sel({ matchLabels: { app: "web", tier: "front" } }).matches(web)).toBe(true);
    expect(sel({ matchLabels: { app: "web", tier: "back" } }).matches(web)).toBe(false);
    expect(sel({ matchLabels: { app: "db" } }).matches(web)).toBe(false);
  });

  test("reserved labels are matched with an empty value", () => {
    expect(sel({ matchLabels: { "reserved:host": "" } }).matches(host)).toBe(true);
    expect(sel({ matchLabels: { "reserved:host": "" } }).matches(web)).toBe(false);
  });

  test("the empty selector selects everything", () => {
    const all = sel({});
    expect(all.isWildcard).toBe(true);
    for (const l of [web, db, legacy, host, LabelSet.empty]) expect(all.matches(l)).toBe(true);
    expect(sel({ matchLabels: {}, matchExpressions: [] }).isWildcard).toBe(true);
  });

  test("In", () => {
    const s = sel({ matchExpressions: [{ key: "app", operator: "In", values: ["web", "api"] }] });
    expect(s.matches(web)).toBe(true);
    expect(s.matches(db)).toBe(false);
    expect(s.matches(host)).toBe(false);
  });

  test("NotIn matches when the key is absent or has another value", () => {
    const s = sel({ matchExpressions: [{ key: "app", operator: "NotIn", values: ["web"] }] });
    expect(s.matches(web)).toBe(false);
    expect(s.matches(db)).toBe(true);
    expect(s.matches(host)).toBe(true);
    expect(s.matches(legacy)).toBe(false);
  });

  test("Exists and DoesNotExist", () => {
    const exists = sel({ matchExpressions: [{ key: "tier", operator: "Exists" }] });
    const absent = sel({ matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] });
    expect(exists.matches(web)).toBe(true);
    expect(exists.matches(legacy)).toBe(false);
    expect(absent.matches(web)).toBe(false);
    expect(absent.matches(legacy)).toBe(true);
    expect(sel({ matchExpressions: [{ key: "k8s:owner", operator: "Exists" }] }).matches(legacy)).toBe(false);
    expect(sel({ matchExpressions: [{ key: "unspec:owner", operator: "Exists" }] }).matches(legacy)).toBe(true);
  });

  test("matchLabels and matchExpressions are ANDed", () => {
    const s = sel({ matchLabels: { tier: "front" }, matchExpressions: [{ key: "app", operator: "NotIn", values: ["db"] }] });
    expect(s.matches(web)).toBe(true);
    expect(s.matches(db)).toBe(false);
  });

  test("a key carried by two sources: In needs one to match, NotIn needs all to differ", () => {
    const both = labels("k8s:app=web", "container:app=db");
    expect(sel({ matchLabels: { app: "web" } }).matches(both)).toBe(true);
    expect(sel({ matchLabels: { app: "db" } }).matches(both)).toBe(true);
    expect(sel({ matchExpressions: [{ key: "app", operator: "NotIn", values: ["db"] }] }).matches(both)).toBe(false);
  });

  test("equal selectors have equal keys whatever the order; different ones differ", () => {
    const a = sel({ matchLabels: { a: "1", b: "2" }, matchExpressions: [{ key: "c", operator: "In", values: ["y", "x", "x"] }] });
    const b = sel({ matchExpressions: [{ key: "c", operator: "In", values: ["x", "y"] }], matchLabels: { b: "2", a: "1" } });
    expect(a.key).toBe(b.key);
    expect(sel({ matchLabels: { a: "1" } }).key).not.toBe(sel({ matchLabels: { "k8s:a": "1" } }).key);
    expect(sel({ matchLabels: { app: "web" } }).toString()).toBe("{any:app=web}");
  });

  test("withMatch replaces an equality on the same key, as upstream's AddMatch", () => {
    const s = sel({ matchLabels: { "k8s:io.kubernetes.pod.namespace": "other", app: "web" } }).withMatch("k8s", "io.kubernetes.pod.namespace", "prod");
    expect(s.matches(web)).toBe(true);
    expect(s.toString()).toBe("{any:app=web, k8s:io.kubernetes.pod.namespace=prod}");
  });
});

describe("selector validation", () => {
  const problems = (value: unknown) => {
    const issues = new Issues();
    readSelector(value, "endpointSelector", issues);
    return issues.list.map((i) => `${i.path}: ${i.message}`);
  };

  test("names the field of every problem", () => {
    expect(problems({ matchLabel: { app: "x" } })).toEqual(['endpointSelector.matchLabel: unknown field (did you mean "matchLabels"?)']);
    expect(problems({ matchLabels: { app: 1 } })).toEqual(["endpointSelector.matchLabels.app: must be a string, not number 1 (quote it)"]);
    expect(problems({ matchLabels: { "a b": "x" } })).toEqual(['endpointSelector.matchLabels.a b: label "a b": the key must not contain whitespace or control characters']);
    expect(problems({ matchExpressions: [{ key: "app", operator: "Within", values: ["x"] }] })).toEqual([
      'endpointSelector.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist, not string "Within"',
    ]);
    expect(problems({ matchExpressions: [{ key: "app", operator: "In" }] })).toEqual(["endpointSelector.matchExpressions[0].values: required: In needs at least one value"]);
    expect(problems({ matchExpressions: [{ key: "app", operator: "Exists", values: ["x"] }] })).toEqual([
      "endpointSelector.matchExpressions[0].values: must be empty for Exists",
    ]);
    expect(problems({ matchExpressions: [{ operator: "Exists" }] })).toEqual(["endpointSelector.matchExpressions[0].key: required: a label key"]);
    expect(problems([])).toEqual(["endpointSelector: must be an object, not a list"]);
  });
});

describe("selector cache", () => {
  const appWeb = sel({ matchLabels: { app: "web" } });
  const tierExists = sel({ matchExpressions: [{ key: "tier", operator: "Exists" }] });
  const notDb = sel({ matchExpressions: [{ key: "app", operator: "NotIn", values: ["db"] }] });

  function populated(): SelectorCache {
    const cache = new SelectorCache();
    cache.upsertIdentity(300, web);
    cache.upsertIdentity(301, db);
    cache.upsertIdentity(302, legacy);
    cache.upsertIdentity(1, host);
    return cache;
  }

  test("a selector's selections are computed when it is added", () => {
    const cache = populated();
    expect([...cache.addSelector(appWeb)].sort()).toEqual([300, 302]);
    expect([...cache.addSelector(tierExists)].sort()).toEqual([300, 301]);
    expect([...cache.addSelector(notDb)].sort((a, b) => a - b)).toEqual([1, 300, 302]);
    expect(cache.selectorCount).toBe(3);
  });

  test("a new identity updates exactly the selectors that select it", () => {
    const cache = populated();
    cache.addSelector(appWeb);
    cache.addSelector(tierExists);
    cache.addSelector(notDb);
    const changes = cache.upsertIdentity(303, labels("k8s:app=web", "k8s:tier=front", "k8s:io.kubernetes.pod.namespace=dev"));
    expect(changes.map((c) => [c.selector.toString(), c.added, c.removed]).sort()).toEqual([
      ["{any:app notin (db)}", [303], []],
      ["{any:app=web}", [303], []],
      ["{any:tier}", [303], []],
    ]);
    expect(cache.upsertIdentity(304, labels("k8s:app=db"))).toEqual([]);
    expect([...cache.selections(appWeb)].sort()).toEqual([300, 302, 303]);
  });

  test("changed labels move an identity between selectors; removal takes it out", () => {
    const cache = populated();
    cache.addSelector(appWeb);
    cache.addSelector(notDb);
    const moved = cache.upsertIdentity(300, db);
    expect(moved.map((c) => [c.selector.toString(), c.added, c.removed]).sort()).toEqual([
      ["{any:app notin (db)}", [], [300]],
      ["{any:app=web}", [], [300]],
    ]);
    expect(cache.upsertIdentity(300, db)).toEqual([]);
    const removed = cache.removeIdentity(302);
    expect(removed.map((c) => [c.selector.toString(), c.removed]).sort()).toEqual([
      ["{any:app notin (db)}", [302]],
      ["{any:app=web}", [302]],
    ]);
    expect(cache.removeIdentity(999)).toEqual([]);
    expect(cache.identityLabels(302)).toBeUndefined();
    // The index forgot the removed identity: a selector added now does not see it.
    const again = sel({ matchLabels: { "container:app": "web" } });
    expect([...cache.addSelector(again)]).toEqual([]);
  });

  test("selectors are reference counted", () => {
    const cache = populated();
    cache.addSelector(appWeb);
    cache.addSelector(sel({ matchLabels: { app: "web" } }));
    cache.releaseSelector(appWeb);
    expect(cache.has(appWeb)).toBe(true);
    cache.releaseSelector(appWeb);
    expect(cache.has(appWeb)).toBe(false);
    expect(cache.selections(appWeb).size).toBe(0);
  });

  test("indexed population agrees with matching every identity", () => {
    const cache = new SelectorCache();
    const all = new Map<number, LabelSet>();
    for (let i = 0; i < 300; i++) {
      const l = labels(`k8s:app=a${i % 7}`, `k8s:tier=t${i % 3}`, `k8s:io.kubernetes.pod.namespace=n${i % 5}`, ...(i % 4 === 0 ? ["container:extra=x"] : []));
      all.set(1000 + i, l);
      cache.upsertIdentity(1000 + i, l);
    }
    const selectors = [
      sel({ matchLabels: { app: "a3" } }),
      sel({ matchLabels: { "k8s:app": "a3", tier: "t1" } }),
      sel({ matchExpressions: [{ key: "app", operator: "In", values: ["a1", "a2"] }, { key: "tier", operator: "NotIn", values: ["t0"] }] }),
      sel({ matchExpressions: [{ key: "extra", operator: "Exists" }] }),
      sel({ matchExpressions: [{ key: "extra", operator: "DoesNotExist" }] }),
      sel({ matchExpressions: [{ key: "k8s:extra", operator: "Exists" }] }),
    ];
    for (const s of selectors) {
      const expected = [...all].filter(([, l]) => s.matches(l)).map(([id]) => id);
      expect([...cache.addSelector(s)].sort()).toEqual(expected.sort());
    }
    // 300 identities: app a3 is every 7th from 3, so 43; a3 with t1 one in 3 of those.
    expect(cache.selections(selectors[0]!).size).toBe(43);
    expect(cache.selections(selectors[5]!).size).toBe(0);
  });
});
