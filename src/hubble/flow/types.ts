/**
 * The Flow as this project holds it in memory: a plain object shaped like the protobuf message
 * (proto field names, enums as numbers, is_reply as its BoolValue wrapper), so our codec
 * (proto/wire.ts) encodes it as is and the printers can walk it with the descriptor. Only the fields we fill are
 * typed; the wire schema is proto/flow/flow.proto.
 */

export const Verdict = {
  VERDICT_UNKNOWN: 0,
  FORWARDED: 1,
  DROPPED: 2,
  ERROR: 3,
  AUDIT: 4,
  REDIRECTED: 5,
  TRACED: 6,
  TRANSLATED: 7,
} as const;

export const TrafficDirection = { TRAFFIC_DIRECTION_UNKNOWN: 0, INGRESS: 1, EGRESS: 2 } as const;

export const TraceObservationPoint = {
  UNKNOWN_POINT: 0,
  TO_PROXY: 1,
  TO_HOST: 2,
  TO_STACK: 3,
  TO_OVERLAY: 4,
  TO_ENDPOINT: 101,
  FROM_ENDPOINT: 5,
  FROM_PROXY: 6,
  FROM_HOST: 7,
  FROM_STACK: 8,
  FROM_OVERLAY: 9,
  FROM_NETWORK: 10,
  TO_NETWORK: 11,
} as const;

export const FlowType = { UNKNOWN_TYPE: 0, L3_L4: 1, L7: 2, SOCK: 3 } as const;

export const IPVersion = { IP_NOT_USED: 0, IPv4: 1, IPv6: 2 } as const;

/** Monitor message types (Flow.event_type.type): upstream's numbers, also the datapath's. */
export const MonitorEventType = { DROP: 1, DEBUG: 2, CAPTURE: 3, TRACE: 4, POLICY_VERDICT: 5, TRACE_SOCK: 7, L7: 129, AGENT: 130 } as const;

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export interface Workload {
  name: string;
  kind: string;
}

export interface Endpoint {
  ID?: number;
  identity?: number;
  cluster_name?: string;
  namespace?: string;
  /** "source:key=value", sorted. */
  labels?: string[];
  pod_name?: string;
  workloads?: Workload[];
}

export interface TCPFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

export const TCP_FLAG_NAMES = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"] as const satisfies readonly (keyof TCPFlags)[];

export interface Ports {
  source_port: number;
  destination_port: number;
}

export interface IcmpHeader {
  type: number;
  code: number;
}

/** Exactly one member is set (a oneof on the wire). */
export interface Layer4 {
  TCP?: Ports & { flags?: TCPFlags };
  UDP?: Ports;
  SCTP?: Ports;
  ICMPv4?: IcmpHeader;
  ICMPv6?: IcmpHeader;
}

export interface IP {
  source: string;
  source_xlated?: string;
  destination: string;
  ipVersion: number;
  encrypted?: boolean;
}

export interface Ethernet {
  source: string;
  destination: string;
}

export interface Service {
  name: string;
  namespace: string;
}

export interface Flow {
  time?: Timestamp;
  uuid?: string;
  verdict?: number;
  drop_reason?: number;
  ethernet?: Ethernet;
  IP?: IP;
  l4?: Layer4;
  source?: Endpoint;
  destination?: Endpoint;
  Type?: number;
  node_name?: string;
  node_labels?: string[];
  source_names?: string[];
  destination_names?: string[];
  event_type?: { type: number; sub_type: number };
  source_service?: Service;
  destination_service?: Service;
  traffic_direction?: number;
  policy_match_type?: number;
  trace_observation_point?: number;
  trace_reason?: number;
  file?: { name: string; line: number };
  drop_reason_desc?: number;
  is_reply?: { value: boolean };
  interface?: { index: number; name?: string };
  Summary?: string;
}

/** Seconds and nanoseconds as one comparable number of nanoseconds. */
export function timestampNanos(t: Timestamp | undefined): bigint {
  // proto3 leaves zero fields off the wire: a decoded Timestamp may lack seconds or nanos.
  return t === undefined ? 0n : BigInt(t.seconds ?? 0) * 1_000_000_000n + BigInt(t.nanos ?? 0);
}

export function timestampFromNanos(ns: bigint): Timestamp {
  return { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) };
}
