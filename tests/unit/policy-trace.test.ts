import { describe, expect, test } from "bun:test";
import { cidrIdentityLabels } from "../../src/identity/cidr.ts";
import { LabelSet } from "../../src/identity/labels.ts";
import { parseCidr } from "../../src/net/ipv4.ts";
import { parsePolicyText } from "../../src/policy/parse.ts";
import { IpProtocol } from "../../src/policy/ports.ts";
import { Repository } from "../../src/policy/repository.ts";
import type { ResolveOptions } from "../../src/policy/resolve.ts";
import { SelectorCache } from "../../src/policy/selector-cache.ts";
import { tracePolicy } from "../../src/policy/trace.ts";

const web = LabelSet.parse(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=prod"]);
const db = LabelSet.parse(["k8s:app=db", "k8s:io.kubernetes.pod.namespace=prod"]);
const world = LabelSet.parse(["reserved:world"]);
const host = LabelSet.parse(["reserved:host"]);

const policies = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db-allow, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db-no-ssh, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingressDeny:
  - toPorts: [{ports: [{port: "22", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-egress, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
  - toEndpoints: [{matchLabels: {app: db}}]
  - toCIDR: [192.0.2.0/24]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
`;

function repository(): Repository {
  const repo = new Repository(new SelectorCache());
  repo.add(parsePolicyText(policies));
  return repo;
}

const trace = (from: LabelSet, to: LabelSet, port: number, options: ResolveOptions = { enforcement: "default" }, protocol: number = IpProtocol.tcp) =>
  tracePolicy(repository(), { from, to, protocol, port }, options);

describe("policy trace", () => {
  test("allowed by a rule on each side", () => {
    const result = trace(web, db, 5432);
    expect(result.verdict).toBe("allowed");
    expect(result.egress).toEqual({
      direction: "egress",
      verdict: "allowed",
      reason: "allowed by rule prod/web-egress",
      enforced: true,
      selectingRules: ["prod/web-egress"],
      decidingRules: ["prod/web-egress"],
    });
    expect(result.ingress).toEqual({
      direction: "ingress",
      verdict: "allowed",
      reason: "allowed by rule prod/db-allow",
      enforced: true,
      selectingRules: ["prod/db-allow", "prod/db-no-ssh"],
      decidingRules: ["prod/db-allow"],
    });
  });

  test("no rule allows the port", () => {
    const result = trace(web, db, 5433);
    expect(result.verdict).toBe("denied");
    expect(result.egress.verdict).toBe("allowed");
    expect(result.ingress.reason).toBe("denied: no rule allows ingress traffic from the source on this port");
    expect(result.ingress.decidingRules).toEqual([]);
  });

  test("a deny rule decides, and says which", () => {
    const result = trace(web, db, 22);
    expect(result.verdict).toBe("denied");
    expect(result.ingress.reason).toBe("denied by deny rule prod/db-no-ssh");
    expect(result.ingress.decidingRules).toEqual(["prod/db-no-ssh"]);
  });

  test("egress of the source denies", () => {
    const result = trace(web, world, 443);
    expect(result.verdict).toBe("denied");
    expect(result.egress.reason).toBe("denied: no rule allows egress traffic to the destination on this port");
    expect(result.ingress).toMatchObject({ verdict: "allowed", reason: "the destination is not a Cilium endpoint: it has no ingress policy" });
    expect(trace(web, cidrIdentityLabels(parseCidr("192.0.2.0/24")), 443).verdict).toBe("allowed");
    expect(trace(web, cidrIdentityLabels(parseCidr("192.0.2.128/25")), 443).verdict).toBe("allowed");
    expect(trace(web, cidrIdentityLabels(parseCidr("192.0.3.0/24")), 443).verdict).toBe("denied");
  });

  test("a direction no rule enforces allows, and says why", () => {
    const result = trace(db, web, 80);
    expect(result.verdict).toBe("allowed");
    expect(result.egress.reason).toBe("allowed: egress policy is not enforced (no rule selecting the source enables default deny)");
    expect(result.ingress.reason).toBe("allowed: ingress policy is not enforced (no rule selecting the destination enables default deny)");
    expect(result.ingress.enforced).toBe(false);
  });

  test("world as a source: only the destination's policy counts", () => {
    const result = trace(world, db, 5432);
    expect(result.egress.reason).toBe("the source is not a Cilium endpoint: it has no egress policy");
    expect(result.ingress.verdict).toBe("denied");
  });

  test("enforcement modes and allow-localhost", () => {
    expect(trace(web, db, 22, { enforcement: "never" }).verdict).toBe("allowed");
    expect(trace(web, db, 22, { enforcement: "never" }).ingress.reason).toBe("policy enforcement is disabled (--enable-policy=never)");
    const always = trace(db, LabelSet.parse(["k8s:app=other", "k8s:io.kubernetes.pod.namespace=prod"]), 80, { enforcement: "always" });
    expect(always.egress.reason).toBe("denied: no rule allows egress traffic to the destination on this port");
    expect(trace(host, db, 8080).ingress.verdict).toBe("denied");
    expect(trace(host, db, 8080, { enforcement: "default", allowLocalhost: true }).ingress.reason).toBe(
      "allowed: traffic from the local host is always allowed (--allow-localhost=always)",
    );
    expect(trace(host, db, 22, { enforcement: "default", allowLocalhost: true }).ingress.verdict).toBe("denied");
  });

  test("ICMP is traced by type", () => {
    const repo = new Repository(new SelectorCache());
    repo.add(parsePolicyText('[{"endpointSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"icmps": [{"fields": [{"type": "EchoRequest"}]}]}]}]'));
    expect(tracePolicy(repo, { from: web, to: db, protocol: IpProtocol.icmp, port: 8 }, { enforcement: "default" }).verdict).toBe("allowed");
    expect(tracePolicy(repo, { from: web, to: db, protocol: IpProtocol.icmp, port: 0 }, { enforcement: "default" }).verdict).toBe("denied");
    expect(tracePolicy(repo, { from: web, to: db, protocol: IpProtocol.icmp, port: 8 }, { enforcement: "default" }).ingress.decidingRules).toEqual([
      "(unlabelled rule for {any:app=db})",
    ]);
  });
});
