import { describe, expect, test } from "bun:test";
import { IdentityAllocator, IdentityLabelError } from "../../src/identity/allocator.ts";
import { IdentityExhaustedError, MemoryIdentityBackend } from "../../src/identity/backend.ts";
import { CidrIdentityAllocator, cidrIdentityLabels } from "../../src/identity/cidr.ts";
import { identityScope } from "../../src/identity/identity.ts";
import { LabelSet } from "../../src/identity/labels.ts";
import { RESERVED_IDENTITIES, ReservedIdentity, reservedIdentityFor, reservedIdentityLabels, reservedIdentityName } from "../../src/identity/reserved.ts";
import { parseCidr } from "../../src/net/ipv4.ts";

const web = LabelSet.parse(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=default"]);
const db = LabelSet.parse(["k8s:app=db", "k8s:io.kubernetes.pod.namespace=default"]);

describe("reserved identities", () => {
  test("numbers and labels as upstream", () => {
    expect(RESERVED_IDENTITIES.map((i) => [i.id, i.labels.toString()])).toEqual([
      [1, "reserved:host"],
      [2, "reserved:world"],
      [3, "reserved:unmanaged"],
      [4, "reserved:health"],
      [5, "reserved:init"],
      [6, "reserved:remote-node"],
      [7, "reserved:kube-apiserver,reserved:remote-node"],
      [8, "reserved:ingress"],
    ]);
    expect(reservedIdentityName(6)).toBe("remote-node");
    expect(reservedIdentityName(256)).toBeUndefined();
    expect(reservedIdentityFor(LabelSet.parse(["reserved:world"]))).toBe(2);
    expect(reservedIdentityFor(web)).toBeUndefined();
    expect(reservedIdentityLabels(1)!.toString()).toBe("reserved:host");
  });

  test("identity scopes", () => {
    expect(identityScope(0)).toBe("unknown");
    expect(identityScope(1)).toBe("reserved");
    expect(identityScope(255)).toBe("reserved");
    expect(identityScope(256)).toBe("global");
    expect(identityScope(65535)).toBe("global");
    expect(identityScope(65536)).toBe("unknown");
    expect(identityScope(16777217)).toBe("local");
    expect(identityScope(16777216)).toBe("unknown");
  });
});

describe("identity allocator", () => {
  test("allocated identities start at 256; the same labels give the same number", async () => {
    const allocator = new IdentityAllocator(new MemoryIdentityBackend());
    const a = await allocator.allocate(web);
    expect(a).toEqual({ identity: { id: 256, labels: web }, isNew: true });
    const b = await allocator.allocate(LabelSet.parse(["k8s:io.kubernetes.pod.namespace=default", "k8s:app=web"]));
    expect(b.identity.id).toBe(256);
    expect(b.isNew).toBe(false);
    expect((await allocator.allocate(db)).identity.id).toBe(257);
    expect(allocator.references(256)).toBe(2);
  });

  test("reserved label sets resolve to their numbers without the backend; empty is init", async () => {
    const backend = new MemoryIdentityBackend();
    const allocator = new IdentityAllocator(backend);
    expect((await allocator.allocate(LabelSet.parse(["reserved:health"]))).identity.id).toBe(ReservedIdentity.health);
    expect((await allocator.allocate(LabelSet.empty)).identity.id).toBe(ReservedIdentity.init);
    expect(await backend.lookup(256)).toBeUndefined();
  });

  test("reserved labels mixed with others, and CIDR labels, are refused", async () => {
    const allocator = new IdentityAllocator(new MemoryIdentityBackend());
    expect(allocator.allocate(LabelSet.parse(["reserved:host", "k8s:app=x"]))).rejects.toThrow(IdentityLabelError);
    expect(allocator.allocate(LabelSet.parse(["cidr:10.0.0.0/8"]))).rejects.toThrow("CIDR identities are node-local");
  });

  test("release by reference count: the backend reference goes with the last local user", async () => {
    const backend = new MemoryIdentityBackend();
    const allocator = new IdentityAllocator(backend);
    const { identity } = await allocator.allocate(web);
    await allocator.allocate(web);
    expect(await allocator.release(identity.id)).toBe(false);
    expect(await backend.lookup(identity.id)).toBe(web);
    expect(await allocator.release(identity.id)).toBe(true);
    expect(await backend.lookup(identity.id)).toBeUndefined();
    expect(allocator.lookup(identity.id)).toBeUndefined();
    expect(await allocator.release(identity.id)).toBe(false);
    expect(await allocator.release(ReservedIdentity.host)).toBe(false);
  });

  test("two nodes sharing a backend agree on numbers; the number lives while either holds it", async () => {
    const backend = new MemoryIdentityBackend();
    const nodeA = new IdentityAllocator(backend);
    const nodeB = new IdentityAllocator(backend);
    const a = await nodeA.allocate(web);
    const b = await nodeB.allocate(web);
    expect(b.identity.id).toBe(a.identity.id);
    expect(b.isNew).toBe(true); // new to node B
    expect(await nodeA.release(a.identity.id)).toBe(true);
    expect(await backend.lookup(a.identity.id)).toBe(web);
    expect(await nodeB.release(a.identity.id)).toBe(true);
    expect(await backend.lookup(a.identity.id)).toBeUndefined();
  });

  test("concurrent allocations of one label set share one backend reference", async () => {
    const backend = new MemoryIdentityBackend();
    const allocator = new IdentityAllocator(backend);
    const [a, b] = await Promise.all([allocator.allocate(web), allocator.allocate(web)]);
    expect(a.identity.id).toBe(b.identity.id);
    expect([a.isNew, b.isNew].sort()).toEqual([false, true]);
    expect(allocator.references(a.identity.id)).toBe(2);
    await allocator.release(a.identity.id);
    await allocator.release(a.identity.id);
    expect(await backend.lookup(a.identity.id)).toBeUndefined();
  });

  test("freed numbers rest until the range wraps; a full range is an error", async () => {
    const backend = new MemoryIdentityBackend(256, 258);
    const ids = [];
    for (const app of ["a", "b", "c"]) ids.push(await backend.allocate(LabelSet.parse([`k8s:app=${app}`])));
    expect(ids).toEqual([256, 257, 258]);
    expect(backend.allocate(LabelSet.parse(["k8s:app=d"]))).rejects.toThrow(IdentityExhaustedError);
    await backend.release(257);
    expect(await backend.allocate(LabelSet.parse(["k8s:app=d"]))).toBe(257);
  });
});

describe("CIDR identities", () => {
  test("labels: the prefix, every containing prefix, and reserved:world (sorted as text)", () => {
    expect(cidrIdentityLabels(parseCidr("10.1.0.0/16")).toStrings()).toEqual([
      "cidr:0.0.0.0/0",
      "cidr:0.0.0.0/1",
      "cidr:0.0.0.0/2",
      "cidr:0.0.0.0/3",
      "cidr:0.0.0.0/4",
      "cidr:10.0.0.0/10",
      "cidr:10.0.0.0/11",
      "cidr:10.0.0.0/12",
      "cidr:10.0.0.0/13",
      "cidr:10.0.0.0/14",
      "cidr:10.0.0.0/15",
      "cidr:10.0.0.0/7",
      "cidr:10.0.0.0/8",
      "cidr:10.0.0.0/9",
      "cidr:10.1.0.0/16",
      "cidr:8.0.0.0/5",
      "cidr:8.0.0.0/6",
      "reserved:world",
    ]);
  });

  test("local identities from 2^24+1, reference counted; 0.0.0.0/0 is world", () => {
    const cidrs = new CidrIdentityAllocator();
    const a = cidrs.acquire(parseCidr("10.0.0.0/8"));
    expect(a.identity.id).toBe(16777217);
    expect(a.isNew).toBe(true);
    expect(cidrs.acquire(parseCidr("10.0.0.0/8"))).toEqual({ identity: a.identity, isNew: false });
    expect(cidrs.acquire(parseCidr("192.168.0.0/16")).identity.id).toBe(16777218);
    expect(cidrs.acquire(parseCidr("0.0.0.0/0")).identity.id).toBe(ReservedIdentity.world);
    expect(cidrs.release(parseCidr("10.0.0.0/8"))).toBe(false);
    expect(cidrs.lookup(16777217)?.labels.has({ source: "cidr", key: "10.0.0.0/8", value: "" })).toBe(true);
    expect(cidrs.release(parseCidr("10.0.0.0/8"))).toBe(true);
    expect(cidrs.lookup(16777217)).toBeUndefined();
    expect(cidrs.release(parseCidr("10.0.0.0/8"))).toBe(false);
    expect(cidrs.acquire(parseCidr("172.16.0.0/12")).identity.id).toBe(16777219);
  });
});
