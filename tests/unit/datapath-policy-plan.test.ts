/**
 * planPolicyUpdate / planFailClosed: only differences are written, and no state the map passes
 * through on the way allows more than the old or the new policy — checked exhaustively over a
 * universe of packets for random old/new policies that keep the control plane's guarantee (no
 * allow more specific than an overlapping deny of the same identity).
 */
import { describe, expect, test } from "bun:test";
import {
  normalizePolicyRules,
  planFailClosed,
  planPolicyUpdate,
  policyKeyId,
  policyKeyWithin,
  policyVerdict,
  type PolicyMapEntry,
  type PolicyPlan,
  type PolicyQuery,
  type PolicyRule,
} from "../../src/datapath/maps/policy.ts";

const EP = 7;
const TCP = 6;
const UDP = 17;
const ICMP = 1;

const rule = (r: Partial<PolicyRule>): PolicyRule => ({ direction: "ingress", identity: 1000, protocol: TCP, port: 80, prefixLength: 16, deny: false, ...r });

/** Applies steps one by one, returning every state (the start, then after each step). */
function states(start: readonly PolicyMapEntry[], plan: PolicyPlan): PolicyMapEntry[][] {
  const map = new Map(start.map((e) => [policyKeyId(e.key), e]));
  const result = [[...map.values()]];
  for (const step of plan.steps) {
    if (step.op === "write") map.set(policyKeyId(step.entry.key), step.entry);
    else {
      const existed = map.delete(policyKeyId(step.key));
      expect(existed).toBe(true);
    }
    result.push([...map.values()]);
  }
  return result;
}

const same = (a: readonly PolicyMapEntry[], b: readonly PolicyMapEntry[]) => {
  const key = (e: PolicyMapEntry) => `${policyKeyId(e.key)}=${e.deny}`;
  expect(a.map(key).sort()).toEqual(b.map(key).sort());
};

const identities = [0, 1000, 1001];
const protocols = [0, TCP, UDP, ICMP];
const universe: PolicyQuery[] = [];
for (const direction of ["ingress", "egress"] as const) {
  for (const identity of [1000, 1001, 2]) {
    for (const protocol of [TCP, UDP, ICMP, 47]) {
      for (const port of [undefined, 0, 22, 79, 80, 81, 84, 87, 88, 95, 96, 443]) universe.push({ direction, identity, protocol, port });
    }
  }
}

let seed = 42;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** A random policy that keeps the control plane's guarantee. */
function randomPolicy(size: number): PolicyMapEntry[] {
  const rules: PolicyRule[] = [];
  for (let i = 0; i < size; i++) {
    const protocol = pick(protocols);
    const prefixLength = protocol === 0 ? 0 : pick([0, 12, 13, 14, 15, 16]);
    const mask = prefixLength === 0 ? 0 : (0xffff << (16 - prefixLength)) & 0xffff;
    const port = protocol === 0 ? 0 : (pick([22, 80, 81, 84, 88, 95, 443]) & mask) >>> 0;
    rules.push({ direction: pick(["ingress", "egress"] as const), identity: pick(identities), protocol, port, prefixLength, deny: random() < 0.3 });
  }
  const entries = normalizePolicyRules(EP, rules);
  const denies = entries.filter((e) => e.deny);
  return entries.filter((e) => e.deny || !denies.some((d) => policyKeyWithin(e.key, d.key)));
}

/** Traffic allowed by a state that neither the old nor the new policy allows. */
function leaks(state: readonly PolicyMapEntry[], before: readonly PolicyMapEntry[], after: readonly PolicyMapEntry[]): PolicyQuery[] {
  const deniedByBoth = universe.filter((q) => policyVerdict(EP, before, true, q) !== 0 && policyVerdict(EP, after, true, q) !== 0);
  return deniedByBoth.filter((q) => policyVerdict(EP, state, true, q) === 0);
}

describe("planPolicyUpdate", () => {
  test("an unchanged policy writes nothing", () => {
    const entries = normalizePolicyRules(EP, [rule({}), rule({ deny: true, port: 22 })]);
    const plan = planPolicyUpdate({ current: entries, desired: entries, otherEntries: 5, limit: 100 });
    expect(plan).toMatchObject({ mode: "ordered", steps: [], added: 0, removed: 0 });
  });

  test("only differences, counted; a changed verdict is one write", () => {
    const current = normalizePolicyRules(EP, [rule({}), rule({ port: 443 }), rule({ port: 22, deny: true }), rule({ port: 23 })]);
    const desired = normalizePolicyRules(EP, [rule({}), rule({ port: 443, deny: true }), rule({ port: 8080 })]);
    const plan = planPolicyUpdate({ current, desired, otherEntries: 0, limit: 100 });
    expect(plan.mode).toBe("ordered");
    expect(plan.added).toBe(2); // 443 becomes a deny, 8080 is new
    expect(plan.removed).toBe(2); // 22 (deny) and 23 (allow)
    expect(plan.steps.map((s) => (s.op === "write" ? `write ${s.entry.key.dport}${s.entry.deny ? " deny" : ""}` : `delete ${s.key.dport}`))).toEqual([
      "write 443 deny",
      "write 8080",
      "delete 23",
      "delete 22",
    ]);
    same(states(current, plan).at(-1)!, desired);
  });

  test("a stale allow that would hide a new deny goes before the deny is written", () => {
    const current = normalizePolicyRules(EP, [rule({ identity: 0, port: 80 })]);
    const desired = normalizePolicyRules(EP, [rule({ identity: 0, port: 0, prefixLength: 0, deny: true }), rule({ identity: 1000, port: 80 })]);
    const plan = planPolicyUpdate({ current, desired, otherEntries: 0, limit: 100 });
    expect(plan.steps[0]).toEqual({ op: "delete", key: current[0]!.key });
  });

  test("the cross-identity case: no intermediate state allows what both policies deny", () => {
    // old: A denied all TCP, anyone allowed TCP/80; new: anyone denied all TCP, A allowed TCP/80.
    const current = normalizePolicyRules(EP, [rule({ port: 0, prefixLength: 0, deny: true }), rule({ identity: 0 })]);
    const desired = normalizePolicyRules(EP, [rule({ identity: 0, port: 0, prefixLength: 0, deny: true }), rule({})]);
    const plan = planPolicyUpdate({ current, desired, otherEntries: 0, limit: 100 });
    for (const state of states(current, plan)) expect(leaks(state, current, desired)).toEqual([]);
  });

  test("random policy changes never leak, in every mode, and end where they should", () => {
    const modes = new Map<string, number>();
    for (let round = 0; round < 400; round++) {
      const current = randomPolicy(1 + Math.floor(random() * 10));
      const desired = randomPolicy(Math.floor(random() * 10));
      const otherEntries = Math.floor(random() * 4);
      const limit = otherEntries + Math.floor(random() * 22);
      const plan = planPolicyUpdate({ current, desired, otherEntries, limit });
      modes.set(plan.mode, (modes.get(plan.mode) ?? 0) + 1);
      const path = states(current, plan);
      const deniedByBoth = universe.filter((q) => policyVerdict(EP, current, true, q) !== 0 && policyVerdict(EP, desired, true, q) !== 0);
      for (const [i, state] of path.entries()) {
        const leaked = deniedByBoth.filter((q) => policyVerdict(EP, state, true, q) === 0);
        if (leaked.length) throw new Error(`round ${round} (${plan.mode}) step ${i} leaks ${JSON.stringify(leaked[0])}`);
        // The map never holds more than the limit (or what it already held).
        expect(otherEntries + state.length).toBeLessThanOrEqual(Math.max(limit, otherEntries + current.length));
      }
      const end = path.at(-1)!;
      if (plan.mode === "overflow") {
        // Fail closed: the end state allows nothing the new policy denies.
        for (const q of universe) if (policyVerdict(EP, end, true, q) === 0) expect(policyVerdict(EP, desired, true, q)).toBe(0);
      } else {
        same(end, desired);
        expect(otherEntries + desired.length).toBeLessThanOrEqual(limit);
      }
    }
    expect([...modes.keys()].sort()).toEqual(["ordered", "overflow", "tight"]);
  });
});

describe("capacity", () => {
  const current = normalizePolicyRules(EP, [rule({ port: 1 }), rule({ port: 2 }), rule({ port: 3, deny: true })]);
  const desired = normalizePolicyRules(EP, [rule({ port: 1 }), rule({ port: 10 }), rule({ port: 11 }), rule({ port: 12, deny: true })]);

  test("room for old and new together: ordered", () => {
    // other 10 + current 3 + new keys 3 = 16
    expect(planPolicyUpdate({ current, desired, otherEntries: 10, limit: 16 }).mode).toBe("ordered");
  });

  test("room for the new policy but not both: tight, stale allows go first", () => {
    const plan = planPolicyUpdate({ current, desired, otherEntries: 10, limit: 15 });
    expect(plan.mode).toBe("tight");
    expect(plan.steps[0]).toMatchObject({ op: "delete" });
    expect(plan.added).toBe(3);
    expect(plan.removed).toBe(2);
  });

  test("no room for the new policy: fail closed with the denies and without the new allows", () => {
    const plan = planPolicyUpdate({ current, desired, otherEntries: 10, limit: 13 });
    expect(plan).toMatchObject({ mode: "overflow", failClosed: "denies-written", needed: 14, endpointEntries: 4, allowsLeftOut: 2 });
    const end = states(current, plan).at(-1)!;
    same(end, normalizePolicyRules(EP, [rule({ port: 1 }), rule({ port: 12, deny: true })]));
  });

  test("not even the denies fit: every allow of the endpoint goes", () => {
    const plan = planPolicyUpdate({ current, desired, otherEntries: 12, limit: 12 });
    expect(plan).toMatchObject({ mode: "overflow", failClosed: "allows-removed" });
    const end = states(current, plan).at(-1)!;
    expect(end.every((e) => e.deny)).toBe(true);
    expect(planFailClosed({ current, desired, otherEntries: 12, limit: 12 }).steps).toEqual(plan.steps);
  });
});
