import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EndpointChangeRequest } from "../../src/agent/api/types.ts";
import { EndpointManager } from "../../src/agent/endpoint/manager.ts";
import { EndpointStore } from "../../src/agent/endpoint/store.ts";
import { AgentError } from "../../src/agent/errors.ts";
import { HealthProblems } from "../../src/agent/health.ts";
import { Ipam } from "../../src/agent/ipam/index.ts";
import { parseCidr } from "../../src/net/ipv4.ts";
import { RecordingDatapath, quietLogger } from "../helpers/agent-fake-datapath.ts";

let dir: string;
let datapath: RecordingDatapath;
let ipam: Ipam;
let health: HealthProblems;
let manager: EndpointManager;
let logLines: string[];

function open(): EndpointManager {
  ipam = Ipam.open(parseCidr("10.200.0.0/24"), dir);
  health = new HealthProblems();
  return new EndpointManager({ ipam, datapath, store: new EndpointStore(dir), health, log: quietLogger(logLines)("endpoint-manager") });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "agent-endpoints-"));
  datapath = new RecordingDatapath();
  logLines = [];
  manager = open();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An attachment's request, with its address allocated as the CNI plugin does first. */
function attach(containerId: string, extra: Partial<EndpointChangeRequest> = {}): EndpointChangeRequest {
  const ip = ipam.allocate(`${containerId}:eth0`);
  return {
    "container-id": containerId,
    "container-interface-name": "eth0",
    "interface-name": `lxc${containerId.slice(0, 8)}`,
    "interface-index": 10,
    mac: "0a:58:0a:c8:00:05",
    "host-mac": "0a:58:0a:c8:00:01",
    addressing: { ipv4: ip },
    "netns-path": `/var/run/netns/${containerId}`,
    ...extra,
  };
}

async function failure(promise: Promise<unknown>): Promise<AgentError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AgentError) return error;
    throw error;
  }
  throw new Error("did not fail");
}

const fileOf = (id: number) => join(dir, "endpoints", `${id}.json`);

describe("creating endpoints", () => {
  test("by cni-attachment-id: the agent picks the id, the datapath applies it, it is ready and persisted", async () => {
    const request = attach("c1", { "k8s-namespace": "default", "k8s-pod-name": "web-0", labels: ["k8s:app=web", "team=blue"] });
    const endpoint = await manager.create("cni-attachment-id:c1:eth0", request);
    expect(endpoint).toMatchObject({ id: 1, state: "ready", mac: "0a:58:0a:c8:00:05", addressing: { ipv4: "10.200.0.2" } });
    expect(endpoint.labels).toEqual(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=default", "unspec:team=blue"]);
    expect(datapath.calls).toEqual(["applyEndpoint 1"]);
    expect(JSON.parse(readFileSync(fileOf(1), "utf8"))).toMatchObject({ version: 1, endpoint: { id: 1, state: "ready" } });
  });

  test("ids go up and are not reused at once; a client may choose a free one", async () => {
    const ids = [];
    for (const c of ["a", "b", "c"]) ids.push((await manager.create(`cni-attachment-id:${c}:eth0`, attach(c))).id);
    expect(ids).toEqual([1, 2, 3]);
    await manager.delete("2");
    expect((await manager.create("cni-attachment-id:d:eth0", attach("d"))).id).toBe(4);
    expect((await manager.create("42", attach("e"))).id).toBe(42);
    expect((await manager.create("0", attach("f"))).id).toBe(43);
    const taken = await failure(manager.create("42", attach("g")));
    expect([taken.kind, taken.message]).toEqual(["conflict", "endpoint ID 42 is already in use"]);
  });

  test("an attachment that exists already is a conflict", async () => {
    const request = attach("c1");
    await manager.create("cni-attachment-id:c1:eth0", request);
    const again = await failure(manager.create("cni-attachment-id:c1:eth0", request));
    expect([again.kind, again.message]).toEqual(["conflict", "endpoint 1 already exists for cni-attachment-id:c1:eth0"]);
  });

  test("a pod cannot claim an address that is not allocated to its attachment", async () => {
    const other = attach("other");
    const thief = await failure(manager.create("cni-attachment-id:thief:eth0", { ...attach("thief"), addressing: other.addressing }));
    expect(thief.kind).toBe("invalid");
    expect(thief.message).toStartWith(`addressing.ipv4: ${other.addressing.ipv4} is allocated to "other:eth0", not to this attachment "thief:eth0"`);
    const unallocated = await failure(manager.create("cni-attachment-id:x:eth0", { ...attach("x"), addressing: { ipv4: "10.200.0.200" } }));
    expect(unallocated.message).toStartWith("addressing.ipv4: 10.200.0.200 is not allocated, not to this attachment");
    const router = await failure(manager.create("cni-attachment-id:y:eth0", { ...attach("y"), addressing: { ipv4: "10.200.0.1" } }));
    expect(router.message).toContain('is allocated to "router"');
    expect(datapath.calls).toEqual([]);
  });

  test("the path must agree with the body and be a form PUT accepts", async () => {
    const request = attach("c1");
    const mismatch = await failure(manager.create("cni-attachment-id:c2:eth0", request));
    expect(mismatch.message).toBe('cni-attachment-id:c2:eth0 does not match the body\'s container-id "c1" and container-interface-name "eth0"');
    expect((await failure(manager.create("container-id:c1", request))).message).toStartWith("cannot create endpoint container-id:c1: use a numeric ID");
    expect((await failure(manager.create("70000", request))).message).toBe('invalid endpoint ID "70000": a numeric endpoint ID must be 0-65535');
  });

  test("bad labels are refused naming the entry", async () => {
    const bad = await failure(manager.create("cni-attachment-id:c1:eth0", attach("c1", { labels: ["app=web", "k8s:=x"] })));
    expect(bad.message).toBe('labels[1] "k8s:=x": the key is empty');
    const clash = await failure(manager.create("cni-attachment-id:c2:eth0", attach("c2", { "k8s-namespace": "a", labels: ["k8s:io.kubernetes.pod.namespace=b"] })));
    expect(clash.message).toBe('labels: k8s:io.kubernetes.pod.namespace=b contradicts k8s-namespace "a"');
  });

  test("when the datapath fails, everything is rolled back and the error says why", async () => {
    datapath.failures.set("applyEndpoint", "attach to lxcc1: no such device");
    const error = await failure(manager.create("cni-attachment-id:c1:eth0", attach("c1")));
    expect(error.kind).toBe("datapath");
    expect(error.message).toBe("endpoint 1 (cni-attachment-id:c1:eth0): the datapath could not apply it: attach to lxcc1: no such device");
    expect(datapath.calls).toEqual(["applyEndpoint 1", "removeEndpoint 1"]);
    expect(datapath.programmed.size).toBe(0);
    expect(manager.list()).toEqual([]);
    expect(existsSync(fileOf(1))).toBe(false);
    // The address stays with the attachment: it came from a separate call the CNI plugin undoes.
    expect(ipam.ownerOf("10.200.0.2")).toBe("c1:eth0");
    datapath.failures.clear();
    expect((await manager.create("cni-attachment-id:c1:eth0", attach("c1"))).state).toBe("ready");
  });

  test("concurrent creations of one attachment: one wins, the other is a conflict", async () => {
    const request = attach("c1");
    const results = await Promise.allSettled([manager.create("cni-attachment-id:c1:eth0", request), manager.create("cni-attachment-id:c1:eth0", request)]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(manager.list()).toHaveLength(1);
  });

  test("callers get copies: changing one does not change the endpoint", async () => {
    const endpoint = await manager.create("cni-attachment-id:c1:eth0", attach("c1"));
    endpoint.state = "disconnected";
    endpoint.labels.push("x:y");
    expect(manager.get("1")).toMatchObject({ state: "ready", labels: [] });
  });
});

describe("looking endpoints up", () => {
  test("by numeric id, container-id, cni-attachment-id, pod-name and ipv4", async () => {
    await manager.create("cni-attachment-id:c1:eth0", attach("c1", { "k8s-namespace": "ns", "k8s-pod-name": "p" }));
    for (const reference of ["1", "container-id:c1", "cni-attachment-id:c1:eth0", "pod-name:ns/p", "ipv4:10.200.0.2"]) {
      expect(manager.get(reference).id).toBe(1);
    }
    const missing = (() => {
      try {
        manager.get("container-id:nope");
      } catch (error) {
        return error as AgentError;
      }
    })();
    expect([missing?.kind, missing?.message]).toEqual(["not-found", "endpoint container-id:nope not found"]);
    expect(() => manager.get("cni-attachment-id:c1")).toThrow("expected cni-attachment-id:<container id>:<interface name>");
    expect(() => manager.get("docker-endpoint:x")).toThrow("expected a numeric ID or one of the prefixes");
  });
});

describe("deleting endpoints", () => {
  test("removes the datapath state, the attachment's address and the state file", async () => {
    await manager.create("cni-attachment-id:c1:eth0", attach("c1"));
    const deletion = await manager.delete("container-id:c1");
    expect(deletion).toMatchObject({ endpoint: { id: 1 }, released: ["10.200.0.2"] });
    expect(datapath.calls).toEqual(["applyEndpoint 1", "removeEndpoint 1"]);
    expect(ipam.ownerOf("10.200.0.2")).toBeUndefined();
    expect(existsSync(fileOf(1))).toBe(false);
    expect(manager.list()).toEqual([]);
  });

  test("by cni-attachment-id without an endpoint, the attachment's address is still released (DEL after a crashed ADD)", async () => {
    attach("c1");
    expect(await manager.delete("cni-attachment-id:c1:eth0")).toEqual({ released: ["10.200.0.2"] });
    const nothing = await failure(manager.delete("cni-attachment-id:c1:eth0"));
    expect([nothing.kind, nothing.message]).toEqual(["not-found", "endpoint cni-attachment-id:c1:eth0 not found"]);
    expect((await failure(manager.delete("7"))).kind).toBe("not-found");
  });

  test("a datapath failure leaves it disconnecting (persisted); deleting again finishes", async () => {
    await manager.create("cni-attachment-id:c1:eth0", attach("c1"));
    datapath.failures.set("removeEndpoint", "detach failed");
    const error = await failure(manager.delete("1"));
    expect([error.kind, error.message]).toEqual(["datapath", "endpoint 1: the datapath could not remove it: detach failed"]);
    expect(manager.get("1").state).toBe("disconnecting");
    expect(JSON.parse(readFileSync(fileOf(1), "utf8")).endpoint.state).toBe("disconnecting");
    expect(ipam.ownerOf("10.200.0.2")).toBe("c1:eth0");
    datapath.failures.clear();
    expect((await manager.delete("1")).released).toEqual(["10.200.0.2"]);
  });
});

describe("restoring after a restart", () => {
  test("re-applies persisted endpoints and carries on with their ids", async () => {
    await manager.create("cni-attachment-id:a:eth0", attach("a", { labels: ["app=a"] }));
    await manager.create("cni-attachment-id:b:eth0", attach("b"));
    datapath = new RecordingDatapath();
    manager = open();
    await manager.restore();
    expect(manager.list().map((e) => [e.id, e.state, e.labels])).toEqual([
      [1, "ready", ["unspec:app=a"]],
      [2, "ready", []],
    ]);
    expect(datapath.calls).toEqual(["applyEndpoint 1", "applyEndpoint 2", "removeStaleEndpoints 1,2"]);
    expect((await manager.create("cni-attachment-id:c:eth0", attach("c"))).id).toBe(3);
    expect(health.list()).toEqual([]);
  });

  test("drops endpoints whose interface vanished and releases their addresses", async () => {
    await manager.create("cni-attachment-id:a:eth0", attach("a"));
    await manager.create("cni-attachment-id:b:eth0", attach("b"));
    datapath = new RecordingDatapath();
    datapath.goneInterfaces.add("lxca");
    manager = open();
    await manager.restore();
    expect(manager.list().map((e) => e.id)).toEqual([2]);
    expect(ipam.addressOf("a:eth0")).toBeUndefined();
    expect(existsSync(fileOf(1))).toBe(false);
    expect(datapath.calls).toEqual(["applyEndpoint 1", "removeEndpoint 1", "applyEndpoint 2", "removeStaleEndpoints 2"]);
    expect(logLines).toContain("info endpoint 1: dropped: host interface lxca no longer exists");
  });

  test("finishes a deletion that a crash interrupted", async () => {
    await manager.create("cni-attachment-id:a:eth0", attach("a"));
    datapath.failures.set("removeEndpoint", "crash");
    await failure(manager.delete("1"));
    datapath = new RecordingDatapath();
    manager = open();
    await manager.restore();
    expect(manager.list()).toEqual([]);
    expect(datapath.calls).toEqual(["removeEndpoint 1", "removeStaleEndpoints "]);
    expect(ipam.addressOf("a:eth0")).toBeUndefined();
  });

  test("an endpoint the datapath cannot re-apply stays, not-ready, and makes the agent degraded", async () => {
    await manager.create("cni-attachment-id:a:eth0", attach("a"));
    datapath = new RecordingDatapath();
    datapath.failures.set("applyEndpoint", "map full");
    manager = open();
    await manager.restore();
    expect(manager.get("1").state).toBe("not-ready");
    expect(health.list()).toEqual(["endpoint 1: the datapath could not re-apply it: map full"]);
    datapath.failures.clear();
    await manager.delete("1");
    expect(health.list()).toEqual([]);
  });

  test("unreadable state files are reported and left alone; stale datapath entries are removed", async () => {
    await manager.create("cni-attachment-id:a:eth0", attach("a"));
    writeFileSync(fileOf(9), "{torn");
    writeFileSync(join(dir, "endpoints", ".1.json.tmp-77-1"), "{torn");
    datapath = new RecordingDatapath();
    datapath.strays.add(5);
    manager = open();
    await manager.restore();
    expect(manager.list().map((e) => e.id)).toEqual([1]);
    expect(health.list()).toHaveLength(1);
    expect(health.list()[0]).toContain("9.json");
    expect(existsSync(fileOf(9))).toBe(true);
    expect(datapath.strays.size).toBe(0);
    expect(logLines).toContain("info removed stale datapath state: lxc entry of endpoint 5");
  });

  test("an endpoint whose address now belongs to someone else is dropped without touching the address", async () => {
    await manager.create("cni-attachment-id:a:eth0", attach("a"));
    // Hand-edit the IPAM state (the snapshot; the journal's lines since go): the address went to another owner.
    const ipamFile = join(dir, "ipam", "ipv4.json");
    const state = JSON.parse(readFileSync(ipamFile, "utf8"));
    state.allocations = { "10.200.0.2": "intruder:eth0" };
    writeFileSync(ipamFile, JSON.stringify(state));
    rmSync(join(dir, "ipam", "ipv4.journal"), { force: true });
    datapath = new RecordingDatapath();
    manager = open();
    await manager.restore();
    expect(manager.list()).toEqual([]);
    expect(ipam.ownerOf("10.200.0.2")).toBe("intruder:eth0");
    expect(datapath.calls).toEqual(["removeEndpoint 1", "removeStaleEndpoints "]);
  });
});
