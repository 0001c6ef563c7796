import { expect, test } from "bun:test";
import { normalizePolicyRules, PolicyMatchType, policyMatchType, type PolicyRule } from "../../src/datapath/maps/policy.ts";

const EP = 7;
const TCP = 6;
const UDP = 17;
const rule = (identity: number, protocol: number, port: number, prefixLength: number, deny = false): PolicyRule => ({ direction: "ingress", identity, protocol, port, prefixLength, deny });
const match = (rules: PolicyRule[], identity: number, protocol: number, port?: number) =>
  policyMatchType(EP, normalizePolicyRules(EP, rules), { direction: "ingress", identity, protocol, ...(port === undefined ? {} : { port }) });

test("each kind of entry reports its upstream match type", () => {
  expect(match([rule(100, TCP, 80, 16)], 100, TCP, 80)).toBe(PolicyMatchType.l3L4);
  expect(match([rule(100, TCP, 80, 13)], 100, TCP, 82)).toBe(PolicyMatchType.l3L4);
  expect(match([rule(100, TCP, 0, 0)], 100, TCP, 80)).toBe(PolicyMatchType.l3Proto);
  expect(match([rule(100, 0, 0, 0)], 100, UDP, 53)).toBe(PolicyMatchType.l3Only);
  expect(match([rule(0, TCP, 80, 16)], 100, TCP, 80)).toBe(PolicyMatchType.l4Only);
  expect(match([rule(0, TCP, 0, 0)], 100, TCP, 80)).toBe(PolicyMatchType.protoOnly);
  expect(match([rule(0, 0, 0, 0)], 100, TCP, 80)).toBe(PolicyMatchType.all);
});

test("no entry: none; the default deny has no match", () => {
  expect(match([], 100, TCP, 80)).toBe(PolicyMatchType.none);
  expect(match([rule(100, TCP, 81, 16)], 100, TCP, 80)).toBe(PolicyMatchType.none);
});

test("the most specific on L4 wins; an identity's entry wins a tie", () => {
  expect(match([rule(100, 0, 0, 0), rule(0, TCP, 80, 16)], 100, TCP, 80)).toBe(PolicyMatchType.l4Only);
  expect(match([rule(100, TCP, 80, 16), rule(0, TCP, 80, 16)], 100, TCP, 80)).toBe(PolicyMatchType.l3L4);
  expect(match([rule(100, 0, 0, 0), rule(0, 0, 0, 0)], 100, TCP, 80)).toBe(PolicyMatchType.l3Only);
});

test("a deny reports the deny entry, not the allow it overrides", () => {
  expect(match([rule(0, TCP, 0, 0), rule(100, TCP, 8080, 16, true)], 100, TCP, 8080)).toBe(PolicyMatchType.l3L4);
  expect(match([rule(100, TCP, 80, 16), rule(0, 0, 0, 0, true)], 100, TCP, 80)).toBe(PolicyMatchType.all);
});

test("a packet without a port matches only port-less entries", () => {
  expect(match([rule(100, TCP, 0, 0), rule(100, TCP, 80, 16)], 100, TCP)).toBe(PolicyMatchType.l3Proto);
  expect(match([rule(0, 0, 0, 0)], 100, 47)).toBe(PolicyMatchType.all);
});
