import { describe, expect, test } from "bun:test";
import type { Endpoint } from "../../src/agent/api/types.ts";
import type { EndpointChangeListener } from "../../src/agent/endpoint/manager.ts";
import { FlowPipeline } from "../../src/agent/hubble/pipeline.ts";
import { AgentEndpointResolver } from "../../src/agent/hubble/resolver.ts";
import { FlowParser, monotonicToWall } from "../../src/hubble/parser/index.ts";
import { FlowRing, type StoredFlow } from "../../src/hubble/ring.ts";
import type { Logger } from "../../src/logging/index.ts";
import { DIR_INGRESS, EVENT_TRACE, eventRecord, tcpPacket, TRACE_TO_LXC } from "../helpers/event-records.ts";

function endpoint(id: number, ip: string, pod: string, identity: number, labels: string[]): Endpoint {
  return { id, identity, addressing: { ipv4: ip }, labels, "k8s-namespace": "shop", "k8s-pod-name": pod } as unknown as Endpoint;
}

function agentCaches(initial: Endpoint[]) {
  let endpoints = initial;
  const listeners: EndpointChangeListener[] = [];
  const policy = { revision: 1, identities: new Map<number, string[]>([[300, ["cidr:198.51.100.0/24", "reserved:world"]]]) };
  return {
    sources: {
      endpoints: { list: () => endpoints, onChange: (l: EndpointChangeListener) => (listeners.push(l), () => undefined) },
      policy: { get revision() { return policy.revision; }, identity: (id: number) => { const labels = policy.identities.get(id); return labels && { labels }; } },
    },
    policy,
    /** As the endpoint manager does it: the change is made, then announced. */
    change(next: Endpoint[], changed: Endpoint, removed: boolean) {
      endpoints = next;
      for (const l of listeners) l(changed, removed);
    },
  };
}

describe("AgentEndpointResolver", () => {
  const web = endpoint(7, "10.0.0.7", "web-0", 256, ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"]);

  test("local endpoints by address: id, identity, namespace and pod name from the CNI arguments, labels", () => {
    const caches = agentCaches([web]);
    const resolver = new AgentEndpointResolver(caches.sources);
    expect(resolver.endpointByIp("10.0.0.7")).toEqual({ id: 7, identity: 256, namespace: "shop", podName: "web-0", labels: web.labels });
    expect(resolver.endpointByIp("10.0.0.8")).toBeUndefined();
    // Answers are shared between flows, not rebuilt per lookup.
    expect(resolver.endpointByIp("10.0.0.7")).toBe(resolver.endpointByIp("10.0.0.7")!);
  });

  test("follows endpoint changes and reports deletions with what it knew", () => {
    const caches = agentCaches([web]);
    const removed: [string, string][] = [];
    const resolver = new AgentEndpointResolver(caches.sources, (ip, info) => removed.push([ip, info.podName]));
    expect(resolver.endpointByIp("10.0.0.7")?.identity).toBe(256);
    const relabelled = { ...web, identity: 257, labels: [...web.labels, "k8s:tier=front"] };
    caches.change([relabelled], relabelled, false);
    expect(resolver.endpointByIp("10.0.0.7")).toMatchObject({ identity: 257, labels: relabelled.labels });
    caches.change([], relabelled, true);
    expect(resolver.endpointByIp("10.0.0.7")).toBeUndefined();
    expect(removed).toEqual([["10.0.0.7", "web-0"]]);
  });

  test("identity labels: allocated and CIDR ones from policy, reserved ones by number, refreshed with the policy revision", () => {
    const caches = agentCaches([]);
    const resolver = new AgentEndpointResolver(caches.sources);
    expect(resolver.identityLabels(2)).toEqual(["reserved:world"]);
    expect(resolver.identityLabels(1)).toEqual(["reserved:host"]);
    expect(resolver.identityLabels(6)).toEqual(["reserved:remote-node"]);
    expect(resolver.identityLabels(300)).toEqual(["cidr:198.51.100.0/24", "reserved:world"]);
    expect(resolver.identityLabels(99999)).toBeUndefined();
    caches.policy.identities.set(99999, ["cidr:203.0.113.0/24"]);
    expect(resolver.identityLabels(99999)).toBeUndefined();
    caches.policy.revision++;
    expect(resolver.identityLabels(99999)).toEqual(["cidr:203.0.113.0/24"]);
  });

  test("another node's pod by the names its node published; a local endpoint wins; an entry without a pod is not one", () => {
    const caches = agentCaches([web]);
    caches.policy.identities.set(700, ["k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop"]);
    const remote = new Map<string, { identity: number; pod?: { namespace: string; podName: string } }>([
      ["10.200.1.5", { identity: 700, pod: { namespace: "shop", podName: "db-0" } }],
      ["10.200.1.6", { identity: 700 }],
      ["10.0.0.7", { identity: 700, pod: { namespace: "elsewhere", podName: "impostor" } }],
    ]);
    const resolver = new AgentEndpointResolver({ ...caches.sources, remoteAddress: (ip) => remote.get(ip) });
    expect(resolver.endpointByIp("10.200.1.5")).toEqual({ id: 0, identity: 700, namespace: "shop", podName: "db-0", labels: ["k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop"] });
    expect(resolver.endpointByIp("10.200.1.5")).toBe(resolver.endpointByIp("10.200.1.5")!);
    expect(resolver.endpointByIp("10.200.1.6")).toBeUndefined();
    expect(resolver.endpointByIp("10.0.0.7")?.podName).toBe("web-0");
    remote.set("10.200.1.5", { identity: 701, pod: { namespace: "shop", podName: "db-1" } });
    expect(resolver.endpointByIp("10.200.1.5")).toMatchObject({ identity: 701, podName: "db-1" });
  });
});

describe("FlowPipeline", () => {
  const silent = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;
  const resolver = { endpointByIp: () => undefined, identityLabels: () => undefined };
  const syn = (ktime: bigint) =>
    eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_LXC, reason: 0, flags: DIR_INGRESS, ktime }, tcpPacket({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 80, flags: 0x02 }));

  function pipeline(nowS: { value: number }) {
    const ring = new FlowRing(7);
    const parser = new FlowParser({ nodeName: "n", resolver, clock: (k) => ({ seconds: Number(k / 1_000_000_000n), nanos: 0 }) });
    return { ring, pipeline: new FlowPipeline({ ring, parser, log: silent, now: () => 5_000, monotonicSeconds: () => nowS.value }) };
  }

  test("stores flows compactly; each read builds the same message (same uuid)", () => {
    const { ring, pipeline: p } = pipeline({ value: 0 });
    p.onRecord(syn(1_000_000_000n));
    const entry = ring.at(0) as StoredFlow;
    expect(entry.flow).toEqual(entry.flow);
    expect(entry.flow).not.toBe(entry.flow);
    expect(entry.flow.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    p.onRecord(syn(1_000_000_000n));
    expect((ring.at(1) as StoredFlow).flow.uuid).not.toBe(entry.flow.uuid);
  });

  test("kernel losses become lost-event entries in order with the flows", () => {
    const { ring, pipeline: p } = pipeline({ value: 0 });
    p.onRecord(syn(1n));
    p.onLost(12);
    p.onRecord(syn(2n));
    expect(ring.at(1)).toEqual({ lost: { source: 1, count: 12, time: { seconds: 5, nanos: 0 } } });
    expect(p.stats).toEqual({ flows: 2, lost: 12, ignored: 0, invalid: 0 });
  });

  test("flows_rate: flows per second over the last minute, by the records' own time", () => {
    const now = { value: 100 };
    const { pipeline: p } = pipeline(now);
    for (let i = 0; i < 120; i++) p.onRecord(syn(BigInt(70 + (i % 30)) * 1_000_000_000n));
    expect(p.flowsRate()).toBe(2);
    now.value = 145;
    // Records of seconds 70..85 have left the window.
    expect(p.flowsRate()).toBe((120 - 4 * 16) / 60);
    now.value = 1000;
    expect(p.flowsRate()).toBe(0);
  });
});

describe("monotonicToWall", () => {
  test("kernel time to wall time, exactly, on both the fast and the BigInt path", () => {
    const monotonicNow = 5_000_000_000_123n;
    const toWall = monotonicToWall(() => monotonicNow);
    const offset = toWall(0n);
    const offsetNs = BigInt(offset.seconds) * 1_000_000_000n + BigInt(offset.nanos);
    for (const ktime of [0n, 1n, 999_999_999n, 1_000_000_000n, 5_000_000_000_123n, 123_456_789_987_654_321n, 2n ** 53n - 1n, 2n ** 53n + 7n]) {
      const t = toWall(ktime);
      expect(t.nanos).toBeGreaterThanOrEqual(0);
      expect(t.nanos).toBeLessThan(1_000_000_000);
      expect(BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanos)).toBe(ktime + offsetNs);
    }
    // The offset is what the wall clock said when the kernel's clock read monotonicNow.
    expect(Math.abs(Number(offsetNs + monotonicNow) / 1e6 - Date.now())).toBeLessThan(1000);
  });
});
