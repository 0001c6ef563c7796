/**
 * The lookup semantics of bpf/lib/policy.h, case by case, on the TypeScript model
 * (policyVerdict). tests/integration/datapath-policy.test.ts checks the compiled programs give the
 * same answers.
 */
import { describe, expect, test } from "bun:test";
import { normalizePolicyRules, policyVerdict, type PolicyQuery, type PolicyRule } from "../../src/datapath/maps/policy.ts";

const TCP = 6;
const UDP = 17;
const ICMP = 1;
const SCTP = 132;
const GRE = 47;
const EP = 12;
const A = 1000;
const B = 1001;

const allow = (r: Partial<PolicyRule>): PolicyRule => ({ direction: "ingress", identity: A, protocol: TCP, port: 80, prefixLength: 16, deny: false, ...r });
const deny = (r: Partial<PolicyRule>): PolicyRule => ({ ...allow(r), deny: true });

function verdict(rules: PolicyRule[], query: Partial<PolicyQuery>, enforced = true, endpointId = EP): number {
  const entries = normalizePolicyRules(EP, rules);
  return policyVerdict(endpointId, entries, enforced, { direction: "ingress", identity: A, protocol: TCP, port: 80, ...query });
}

describe("policy verdicts", () => {
  test("a direction that is not enforced allows everything, even what a deny entry names", () => {
    expect(verdict([], {}, false)).toBe(0);
    expect(verdict([deny({})], {}, false)).toBe(0);
  });

  test("enforced without entries: default deny, reason 133", () => {
    expect(verdict([], {})).toBe(133);
    expect(verdict([], { protocol: UDP, port: 53 })).toBe(133);
  });

  test("exact identity, protocol and port", () => {
    const rules = [allow({})];
    expect(verdict(rules, {})).toBe(0);
    expect(verdict(rules, { port: 81 })).toBe(133);
    expect(verdict(rules, { identity: B })).toBe(133);
    expect(verdict(rules, { protocol: UDP })).toBe(133);
    expect(verdict(rules, { direction: "egress" })).toBe(133);
  });

  test("any identity (0) allows every remote", () => {
    const rules = [allow({ identity: 0 })];
    expect(verdict(rules, { identity: A })).toBe(0);
    expect(verdict(rules, { identity: 2 })).toBe(0);
    expect(verdict(rules, { port: 22 })).toBe(133);
  });

  test("L3 only: any protocol, any port, also packets without ports", () => {
    const rules = [allow({ protocol: 0, port: 0 })];
    for (const q of [{ protocol: TCP, port: 1 }, { protocol: UDP, port: 53 }, { protocol: ICMP, port: 8 }, { protocol: GRE, port: undefined }]) {
      expect(verdict(rules, q)).toBe(0);
    }
    expect(verdict(rules, { identity: B })).toBe(133);
  });

  test("any port of one protocol", () => {
    const rules = [allow({ protocol: UDP, port: 0, prefixLength: 0 })];
    expect(verdict(rules, { protocol: UDP, port: 1 })).toBe(0);
    expect(verdict(rules, { protocol: UDP, port: 65535 })).toBe(0);
    expect(verdict(rules, { protocol: TCP, port: 1 })).toBe(133);
  });

  test("a port prefix covers exactly its block", () => {
    const rules = [allow({ port: 8080, prefixLength: 13 })]; // 8080-8087
    expect(verdict(rules, { port: 8079 })).toBe(133);
    expect(verdict(rules, { port: 8080 })).toBe(0);
    expect(verdict(rules, { port: 8087 })).toBe(0);
    expect(verdict(rules, { port: 8088 })).toBe(133);
  });

  test("UDP and TCP are told apart; SCTP ports are ports", () => {
    const rules = [allow({ protocol: UDP, port: 53 }), allow({ protocol: SCTP, port: 3868 })];
    expect(verdict(rules, { protocol: UDP, port: 53 })).toBe(0);
    expect(verdict(rules, { protocol: TCP, port: 53 })).toBe(133);
    expect(verdict(rules, { protocol: SCTP, port: 3868 })).toBe(0);
  });

  test("ICMP: the ICMP type is the port", () => {
    const rules = [allow({ protocol: ICMP, port: 8 })];
    expect(verdict(rules, { protocol: ICMP, port: 8 })).toBe(0);
    expect(verdict(rules, { protocol: ICMP, port: 13 })).toBe(133);
  });

  test("identity deny beats an any-identity allow: reason 181", () => {
    const rules = [allow({ identity: 0, protocol: 0, port: 0 }), deny({ identity: A })];
    expect(verdict(rules, {})).toBe(181);
    expect(verdict(rules, { port: 81 })).toBe(0);
    expect(verdict(rules, { identity: B })).toBe(0);
  });

  test("any-identity deny beats an identity allow: reason 181", () => {
    const rules = [allow({ identity: A, protocol: 0, port: 0 }), deny({ identity: 0, port: 0, prefixLength: 0 })];
    expect(verdict(rules, {})).toBe(181);
    expect(verdict(rules, { protocol: UDP, port: 80 })).toBe(0);
  });

  test("within one identity the longest prefix wins (a narrower deny inside a wider allow)", () => {
    const rules = [allow({ protocol: 0, port: 0 }), deny({ port: 22 })];
    expect(verdict(rules, { port: 22 })).toBe(181);
    expect(verdict(rules, { port: 23 })).toBe(0);
  });

  test("a deny alone still denies with 181, other traffic by default with 133", () => {
    const rules = [deny({})];
    expect(verdict(rules, {})).toBe(181);
    expect(verdict(rules, { port: 81 })).toBe(133);
  });

  test("entries of other endpoints and other directions do not apply", () => {
    const entries = [
      ...normalizePolicyRules(EP + 1, [allow({ protocol: 0, port: 0, identity: 0 })]),
      ...normalizePolicyRules(EP, [allow({ direction: "egress", protocol: 0, port: 0, identity: 0 })]),
    ];
    expect(policyVerdict(EP, entries, true, { direction: "ingress", identity: A, protocol: TCP, port: 80 })).toBe(133);
    expect(policyVerdict(EP, entries, true, { direction: "egress", identity: A, protocol: TCP, port: 80 })).toBe(0);
  });

  test("packets without a port (later fragments, port-less protocols) match only port-less entries", () => {
    const portOnly = [allow({ port: 80 }), allow({ protocol: GRE, port: 0, prefixLength: 16 })];
    expect(verdict(portOnly, { port: undefined })).toBe(133);
    expect(verdict(portOnly, { protocol: GRE, port: undefined })).toBe(133);
    expect(verdict([allow({ port: 0, prefixLength: 0 })], { port: undefined })).toBe(0);
    expect(verdict([allow({ protocol: GRE, port: 0, prefixLength: 0 })], { protocol: GRE, port: undefined })).toBe(0);
    // A port-specific deny cannot see such packets; a wider deny can.
    expect(verdict([allow({ protocol: 0, port: 0 }), deny({ port: 80 })], { port: undefined })).toBe(0);
    expect(verdict([allow({ protocol: 0, port: 0 }), deny({ port: 0, prefixLength: 0 })], { port: undefined })).toBe(181);
  });
});
