/** A forwarded TCP SYN between two pods, as a Flow the tests print, encode and compare. */
import type { Flow } from "../../src/hubble/flow/types.ts";

// 2023-11-14T22:13:20.005Z
export const SYN_TIME = { seconds: 1_700_000_000, nanos: 5_000_000 };

export const synFlow: Flow = {
  time: SYN_TIME,
  verdict: 1,
  IP: { source: "10.0.0.1", destination: "10.0.1.2", ipVersion: 1 },
  l4: { TCP: { source_port: 43210, destination_port: 80, flags: { SYN: true } } },
  source: { ID: 101, identity: 40001, namespace: "default", pod_name: "client", labels: ["k8s:app=client"] },
  destination: { ID: 202, identity: 40002, namespace: "shop", pod_name: "server", labels: [] },
  Type: 1,
  node_name: "node-a",
  event_type: { type: 4, sub_type: 0 },
  traffic_direction: 2,
  trace_observation_point: 101,
  is_reply: { value: false },
  Summary: "TCP Flags: SYN",
};
