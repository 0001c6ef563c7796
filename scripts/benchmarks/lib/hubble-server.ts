/**
 * A Hubble server for the hubble CLI benchmarks, in its own process (the benchmarks time
 * commands with spawnSync, which would stall a server in their own event loop): a ring filled
 * with `count` TCP flows between pods, served on a unix socket. Prints "ready" when listening.
 *
 * Usage: bun scripts/benchmarks/lib/hubble-server.ts <socket> <count>
 */
import type { Flow } from "../../../src/hubble/flow/types.ts";
import { FlowRing } from "../../../src/hubble/ring.ts";
import { startHubbleServer } from "../../../src/hubble/server/index.ts";

const [socketPath, countText] = process.argv.slice(2);
const count = Number(countText);
if (!socketPath || !Number.isInteger(count) || count < 1) throw new Error("usage: hubble-server.ts <socket> <count>");

let capacity = 1;
while (capacity < count) capacity = capacity * 2 + 1;
const ring = new FlowRing(capacity);
const start = Math.floor(Date.now() / 1000) - count;
for (let i = 0; i < count; i++) {
  const flow: Flow = {
    time: { seconds: start + i, nanos: (i * 7919) % 1_000_000_000 },
    uuid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    verdict: i % 10 === 0 ? 2 : 1,
    ...(i % 10 === 0 ? { drop_reason_desc: 133 } : {}),
    IP: { source: `10.0.${(i >> 8) & 255}.${i & 255}`, destination: "10.0.1.1", ipVersion: 1 },
    l4: { TCP: { source_port: 32768 + (i % 28000), destination_port: 8080, flags: { SYN: true } } },
    source: { ID: 100 + (i % 50), identity: 40000 + (i % 50), namespace: "default", pod_name: `client-${i % 50}`, labels: ["k8s:app=client", "k8s:io.kubernetes.pod.namespace=default"] },
    destination: { ID: 500, identity: 50000, namespace: "shop", pod_name: "server-0", labels: ["k8s:app=server", "k8s:io.kubernetes.pod.namespace=shop"] },
    Type: 1,
    node_name: "bench-node",
    event_type: i % 10 === 0 ? { type: 1, sub_type: 133 } : { type: 4, sub_type: 0 },
    traffic_direction: 2,
    is_reply: { value: false },
    Summary: "TCP Flags: SYN",
  };
  ring.write(flow);
}
const server = await startHubbleServer({ ring, nodeName: "bench-node", version: "bench", socketPath });
process.on("SIGTERM", () => void server.stop().then(() => process.exit(0)));
console.log("ready");
