/**
 * Hubble Relay as the real binary (dist/hubble-relay) over three Hubble servers on unix sockets:
 * it finds them through node a's Peer service, merges their flows in time order, reports each
 * node's state, marks a node that goes away unavailable and picks it up again when it returns.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { credentials, makeGenericClientConstructor, status, type Client, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Flow } from "../../src/hubble/flow/types.ts";
import { PeerRegistry } from "../../src/hubble/peer/index.ts";
import { grpcServiceDefinition } from "../../src/hubble/proto/grpc.ts";
import { FlowRing } from "../../src/hubble/ring.ts";
import { startHubbleServer, type HubbleServer } from "../../src/hubble/server/index.ts";

type Obj = Record<string, any>;
const RELAY_BINARY = join(import.meta.dir, "../../dist/hubble-relay");
const NODE_CONNECTED = 1;
const NODE_UNAVAILABLE = 2;
const NODE_GONE = 3;

const dir = mkdtempSync(join(tmpdir(), "hubble-relay-"));
const socket = (name: string) => join(dir, `${name}.sock`);
const peers = new PeerRegistry();
const rings = new Map<string, FlowRing>();
const servers = new Map<string, HubbleServer>();
let relay: ReturnType<typeof Bun.spawn> | undefined;
let observer: Client & Record<string, any>;

function flow(node: string, seconds: number, namespace: string): Flow {
  return {
    time: { seconds, nanos: 0 },
    uuid: `${node}-${seconds}`,
    verdict: 1,
    IP: { source: "10.0.0.1", destination: "10.0.1.1", ipVersion: 1 },
    source: { namespace, pod_name: `client-${node}` },
    destination: { namespace, pod_name: "server" },
    Type: 1,
    node_name: node,
    event_type: { type: 4, sub_type: 0 },
  };
}

async function startNode(name: string): Promise<void> {
  const ring = rings.get(name) ?? new FlowRing(63);
  rings.set(name, ring);
  servers.set(name, await startHubbleServer({ ring, nodeName: name, version: "1.0.0-test", socketPath: socket(name), ...(name === "a" ? { peers } : {}) }));
}

function unary(method: string, req: Obj = {}): Promise<Obj> {
  return new Promise((resolve, reject) => observer[method](req, (err: ServiceError | null, res: Obj) => (err ? reject(err) : resolve(res))));
}

function readAll(req: Obj, limit = Infinity): Promise<Obj[]> {
  return new Promise((resolve, reject) => {
    const out: Obj[] = [];
    const stream: ClientReadableStream<Obj> = observer.GetFlows(req);
    stream.on("data", (d: Obj) => {
      out.push(d);
      if (out.length === limit) {
        stream.cancel();
        resolve(out);
      }
    });
    stream.on("end", () => resolve(out));
    stream.on("error", (e: ServiceError) => (e.code === status.CANCELLED ? resolve(out) : reject(e)));
  });
}

const flowIds = (responses: Obj[]) => responses.filter((r) => r.flow).map((r) => r.flow.uuid);
const nodeStatuses = (responses: Obj[]) => responses.filter((r) => r.node_status).map((r) => r.node_status);

async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await Bun.sleep(100);
  }
}

beforeAll(async () => {
  for (const name of ["a", "b", "c"]) {
    await startNode(name);
    peers.upsert({ name, address: `unix:${socket(name)}` });
  }
  // Interleaved in time across nodes: a has 1,4,7..., b 2,5,8..., c 3,6,9...
  for (let i = 0; i < 10; i++) {
    rings.get("a")!.write(flow("a", 100 + 3 * i, "shop"));
    rings.get("b")!.write(flow("b", 101 + 3 * i, "shop"));
    rings.get("c")!.write(flow("c", 102 + 3 * i, "bank"));
  }
  relay = Bun.spawn(
    [RELAY_BINARY, "--listen-address", `unix://${socket("relay")}`, "--peer-service", `unix://${socket("a")}`, "--dial-timeout", "1s", "--retry-timeout", "500ms", "--sort-buffer-drain-timeout", "200ms"],
    { stdout: "pipe", stderr: "pipe" },
  );
  const Observer = makeGenericClientConstructor(grpcServiceDefinition("observer.Observer"), "Observer");
  observer = new Observer(`unix://${socket("relay")}`, credentials.createInsecure()) as any;
  // Ready once the relay serves and has learned the three peers.
  const nodes = await eventually(() => unary("GetNodes").catch(() => ({ nodes: [] })), (r) => r.nodes?.length === 3);
  expect(nodes.nodes).toHaveLength(3);
});

afterAll(async () => {
  observer?.close();
  relay?.kill();
  await relay?.exited;
  for (const server of servers.values()) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("hubble-relay", () => {
  test("GetFlows merges every node's flows in time order and names the nodes that took part", async () => {
    const responses = await readAll({});
    expect(flowIds(responses)).toEqual(Array.from({ length: 30 }, (_, i) => `${"abc"[i % 3]}-${100 + i}`));
    expect(nodeStatuses(responses)).toEqual([{ state_change: NODE_CONNECTED, node_names: ["a", "b", "c"] }]);
  });

  test("GetFlows --last N gives the newest N flows of the cluster, --first N the oldest", async () => {
    expect(flowIds(await readAll({ number: 4 }))).toEqual(["c-126", "a-127", "b-128", "c-129"]);
    expect(flowIds(await readAll({ number: 2, first: true }))).toEqual(["a-100", "b-101"]);
  });

  test("GetFlows filters apply on every node", async () => {
    expect(flowIds(await readAll({ whitelist: [{ source_pod: ["bank/"] }], number: 3 }))).toEqual(["c-123", "c-126", "c-129"]);
  });

  test("ServerStatus adds up the nodes", async () => {
    const res = await unary("ServerStatus");
    expect(res).toMatchObject({ num_flows: 30, max_flows: 189, seen_flows: 30, num_connected_nodes: { value: 3 }, num_unavailable_nodes: { value: 0 } });
  });

  test("GetNodes lists each node as connected, with its flows", async () => {
    const res = await unary("GetNodes");
    expect(res.nodes.map((n: Obj) => [n.name, n.state, n.num_flows, n.max_flows, n.version])).toEqual([
      ["a", NODE_CONNECTED, 10, 63, "1.0.0-test"],
      ["b", NODE_CONNECTED, 10, 63, "1.0.0-test"],
      ["c", NODE_CONNECTED, 10, 63, "1.0.0-test"],
    ]);
  });

  test("GetNamespaces is the union over the nodes", async () => {
    expect(await unary("GetNamespaces")).toEqual({ namespaces: [{ cluster: "default", namespace: "bank" }, { cluster: "default", namespace: "shop" }] });
  });

  test("follow delivers new flows of every node, in time order, within a second", async () => {
    const got = readAll({ follow: true }, 4);
    await Bun.sleep(300);
    const written = performance.now();
    rings.get("b")!.write(flow("b", 201, "shop"));
    rings.get("a")!.write(flow("a", 200, "shop"));
    rings.get("c")!.write(flow("c", 202, "bank"));
    const responses = await got;
    expect(performance.now() - written).toBeLessThan(1000);
    expect(nodeStatuses(responses)).toHaveLength(1);
    expect(flowIds(responses)).toEqual(["a-200", "b-201", "c-202"]);
  });

  test("a node that goes away is reported unavailable, and is picked up again when it returns", async () => {
    await servers.get("c")!.stop();
    const status = await eventually(() => unary("ServerStatus"), (r) => r.num_unavailable_nodes?.value === 1);
    expect(status).toMatchObject({ num_connected_nodes: { value: 2 }, num_unavailable_nodes: { value: 1 }, unavailable_nodes: ["c"] });
    const nodes = await unary("GetNodes");
    expect(nodes.nodes.map((n: Obj) => [n.name, n.state])).toEqual([
      ["a", NODE_CONNECTED],
      ["b", NODE_CONNECTED],
      ["c", NODE_UNAVAILABLE],
    ]);
    const responses = await readAll({ number: 2 });
    expect(nodeStatuses(responses)).toContainEqual(expect.objectContaining({ state_change: NODE_UNAVAILABLE, node_names: ["c"] }));
    expect(flowIds(responses)).toEqual(["a-200", "b-201"]);

    await startNode("c");
    const back = await eventually(() => unary("ServerStatus"), (r) => r.num_connected_nodes?.value === 3);
    expect(back.num_unavailable_nodes).toEqual({ value: 0 });
    expect(flowIds(await readAll({ number: 1 }))).toEqual(["c-202"]);
  });

  test("a peer the Peer service deletes is dropped, one it adds is used", async () => {
    peers.delete("b");
    const without = await eventually(() => unary("GetNodes"), (r) => r.nodes.length === 2);
    expect(without.nodes.map((n: Obj) => n.name)).toEqual(["a", "c"]);
    peers.upsert({ name: "b", address: `unix:${socket("b")}` });
    const withB = await eventually(() => unary("GetNodes"), (r) => r.nodes.length === 3);
    expect(withB.nodes.map((n: Obj) => n.name)).toEqual(["a", "b", "c"]);
  });
});

describe("hubble-relay follow as the cluster changes", () => {
  /** A followed GetFlows whose responses are collected until cancelled. */
  function follow() {
    const responses: Obj[] = [];
    const stream: ClientReadableStream<Obj> = observer.GetFlows({ follow: true });
    stream.on("data", (d: Obj) => responses.push(d));
    stream.on("error", () => undefined);
    return { responses, cancel: () => stream.cancel() };
  }
  const until = (ok: () => boolean) => eventually(async () => ok(), (v) => v, 10_000);

  test("an open follow picks up a node that joins, reports one that leaves, and repeats nothing of one that comes back", async () => {
    const stream = follow();
    try {
      await Bun.sleep(300);
      rings.get("c")!.write(flow("c", 300, "bank"));
      expect(await until(() => flowIds(stream.responses).includes("c-300"))).toBe(true);

      // A node that joins after the stream started.
      await startNode("d");
      peers.upsert({ name: "d", address: `unix:${socket("d")}` });
      expect(await until(() => nodeStatuses(stream.responses).some((s) => s.state_change === NODE_CONNECTED && s.node_names?.[0] === "d"))).toBe(true);
      rings.get("d")!.write(flow("d", 301, "shop"));
      expect(await until(() => flowIds(stream.responses).includes("d-301"))).toBe(true);

      // A node that goes away and comes back: picked up again, from after its last flow.
      await servers.get("c")!.stop();
      expect(await until(() => nodeStatuses(stream.responses).some((s) => s.state_change === NODE_UNAVAILABLE && s.node_names?.[0] === "c"))).toBe(true);
      await startNode("c");
      expect(await until(() => nodeStatuses(stream.responses).some((s) => s.state_change === NODE_CONNECTED && s.node_names?.[0] === "c"))).toBe(true);
      rings.get("c")!.write(flow("c", 302, "bank"));
      expect(await until(() => flowIds(stream.responses).includes("c-302"))).toBe(true);

      // A node the Peer service removes.
      peers.delete("d");
      expect(await until(() => nodeStatuses(stream.responses).some((s) => s.state_change === NODE_GONE && s.node_names?.[0] === "d"))).toBe(true);
      rings.get("d")!.write(flow("d", 303, "shop"));
      await Bun.sleep(500);

      const ids = flowIds(stream.responses);
      expect(ids.filter((id) => id === "c-300")).toHaveLength(1);
      expect(ids).not.toContain("d-303");
      expect(ids.filter((id) => id.startsWith("c-") && id !== "c-300" && id !== "c-302")).toEqual([]);
    } finally {
      stream.cancel();
      await servers.get("d")?.stop();
    }
  });
});

describe("hubble-relay flags", () => {
  test("a bad listen address is a clear error and a non-zero exit", async () => {
    const bad = Bun.spawnSync([RELAY_BINARY, "--listen-address", "nonsense", "--peer-service", `unix://${socket("a")}`]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr.toString()).toContain('listen address "nonsense"');
  });

  test("a bad duration names the flag", async () => {
    const bad = Bun.spawnSync([RELAY_BINARY, "--dial-timeout", "soon"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("--dial-timeout");
  });
});
