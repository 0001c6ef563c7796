/**
 * `hubble observe --follow` through Hubble Relay while the cluster changes under it: real agents
 * in tunnel mode, real etcd, the operator, the relay binary and the hubble CLI. One follow is
 * opened with two nodes; a third node joins afterwards and its flows must arrive on that same
 * stream; then its agent is killed and restarted and its new flows must arrive again.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { TestCluster, eventually } from "../helpers/cluster.ts";
import type { Pod, TestNode } from "../helpers/cluster-node.ts";
import { uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, type EchoServer } from "../helpers/traffic.ts";

const HUBBLE = join(import.meta.dir, "../../dist/hubble");
const prefix = uniquePrefix("rlf");
const octet = (process.pid % 200) + 20;

interface FlowLine {
  flow?: { node_name?: string; IP?: { source?: string; destination?: string }; destination?: { pod_name?: string } };
}

/** A running `hubble observe --follow -o json` against the relay; its lines parsed as they come. */
function follow(socket: string): { lines: FlowLine[]; stop: () => Promise<void> } {
  const proc = Bun.spawn([HUBBLE, "observe", "--follow", "-o", "json", "--server", `unix://${socket}`], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const lines: FlowLine[] = [];
  void (async () => {
    let rest = "";
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const part of parts) if (part.trim()) lines.push(JSON.parse(part) as FlowLine);
    }
  })();
  return {
    lines,
    stop: async () => {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

describePrivileged("hubble observe --follow through the relay while nodes join and restart", () => {
  const cluster = new TestCluster({ prefix, underlaySubnet: `10.97.${octet}`, clusterPoolCidr: "10.241.0.0/16", relay: true });
  const servers: EchoServer[] = [];
  let client: Pod;

  beforeAll(async () => {
    await cluster.start(2);
    client = cluster.nodes[0]!.addPod("client", "default", { app: "client" });
  }, 180_000);

  afterAll(async () => {
    for (const server of servers) server.stop();
    await cluster.destroy();
  }, 60_000);

  /** Connections from n1's client to `target` until a flow of n3 towards it shows on the open follow. */
  async function flowsOfN3Arrive(observed: FlowLine[], target: Pod, what: string): Promise<void> {
    await eventually(
      what,
      async () => {
        await probeAsync(client.netns, "tcp", target.ip, 80, 1000);
        return observed.some((l) => l.flow?.node_name === "n3" && l.flow.IP?.destination === target.ip);
      },
      60_000,
      500,
    );
  }

  test("a node that joins after the follow started, and restarts later, shows its flows on the same open stream", async () => {
    const open = follow(cluster.relaySocket);
    try {
      // The follow is running against n1 and n2 before n3 exists.
      await eventually("the follow to carry flows of the first nodes", async () => {
        await probeAsync(client.netns, "tcp", "10.241.255.1", 80, 200);
        return open.lines.some((l) => l.flow?.node_name === "n1");
      }, 30_000, 500);

      const n3: TestNode = cluster.addNode();
      await n3.startAgent();
      const server = n3.addPod("server", "default", { app: "server" });
      servers.push(await startEchoServers(server.netns, [{ protocol: "tcp", port: 80 }]));
      await flowsOfN3Arrive(open.lines, server, "n3's flows on the follow opened before it joined");
      expect(open.lines.some((l) => l.flow?.node_name === "n3")).toBe(true);

      await n3.killAgent();
      const before = open.lines.length;
      await n3.startAgent();
      const restarted = await eventually(
        "a new flow of n3 after its restart on the same follow",
        async () => {
          await probeAsync(client.netns, "tcp", server.ip, 80, 1000);
          return open.lines.slice(before).some((l) => l.flow?.node_name === "n3" && l.flow.IP?.destination === server.ip);
        },
        60_000,
        500,
      );
      expect(restarted).toBe(true);
    } finally {
      await open.stop();
    }
  }, 240_000);
});
