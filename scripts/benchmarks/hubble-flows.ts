/**
 * Hubble's path from datapath records to stored flows, in process, on one core, through the
 * agent's own code: FlowPipeline (the monitor hub's listener) with the real FlowParser, the
 * agent's endpoint resolver over 24 pods and a FlowRing of 65,535. Records are built byte for
 * byte as bpf/lib/events.h lays them out (a mix of traces, policy drops and world traffic), and
 * each is copied before it is handed over, as the ring-buffer reader does.
 *
 * Rows: records -> stored flows per second (baseline: bare decodeEventRecord of the same copies);
 * the same plus building and filtering every Flow message, as a `hubble observe -f --pod ...`
 * reader costs; and memory per stored flow (RSS growth of a fresh process filling a ring of
 * 65,535, divided by 65,535; baseline: the same ring holding fully built Flow objects).
 *
 * Runnable alone: bun scripts/benchmarks/hubble-flows.ts
 */
import type { Endpoint } from "../../src/agent/api/types.ts";
import { agentFlowPath } from "../../src/agent/hubble/pipeline.ts";
import { compileFilterLists } from "../../src/hubble/filters/index.ts";
import { createHubbleMetrics } from "../../src/hubble/metrics/index.ts";
import { decodeEventRecord } from "../../src/hubble/parser/index.ts";
import type { Logger } from "../../src/logging/index.ts";
import {
  DIR_EGRESS,
  DIR_INGRESS,
  DROP_POLICY,
  EVENT_DROP,
  EVENT_TRACE,
  eventRecord,
  icmpEchoPacket,
  tcpPacket,
  TRACE_FROM_LXC,
  TRACE_TO_LXC,
} from "../../tests/helpers/event-records.ts";
import { median, type Benchmark, type BenchRow } from "./harness.ts";

const PODS = 24;
const RING = 65_535;
const RECORDS_PER_RUN = 300_000;
const RUNS = 5;

const silent = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

function pods(): Endpoint[] {
  return Array.from({ length: PODS }, (_, i) => ({
    id: 100 + i,
    identity: 30000 + (i % 6),
    state: "ready",
    labels: [`k8s:app=app-${i % 6}`, `k8s:io.kubernetes.pod.namespace=ns-${i % 3}`],
    addressing: { ipv4: `10.200.0.${10 + i}` },
    "container-id": `c${i}`,
    "container-interface-name": "eth0",
    "interface-name": `lxc${i}`,
    "interface-index": 10 + i,
    mac: "0a:58:0a:c8:00:02",
    "host-mac": "0a:58:0a:c8:00:01",
    "k8s-namespace": `ns-${i % 3}`,
    "k8s-pod-name": `pod-${i}`,
  })) as unknown as Endpoint[];
}

/** 4096 records: 60% established TCP to an endpoint, 20% new connections leaving one, 10% policy drops, 10% world ICMP. */
function records(endpoints: Endpoint[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 4096; i++) {
    const a = endpoints[i % PODS]!;
    const b = endpoints[(i * 7 + 3) % PODS]!;
    const tcp = tcpPacket({ src: a.addressing.ipv4, dst: b.addressing.ipv4, sport: 32768 + (i % 20000), dport: 8080, flags: 0x10, payload: 40 });
    const kind = i % 10;
    if (kind < 6) {
      out.push(eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_LXC, source: b.id, srcIdentity: a.identity!, dstIdentity: b.identity!, dstId: b.id, reason: 1, flags: DIR_INGRESS }, tcp));
    } else if (kind < 8) {
      out.push(eventRecord({ type: EVENT_TRACE, subtype: TRACE_FROM_LXC, source: a.id, srcIdentity: a.identity!, dstIdentity: b.identity!, reason: 0, flags: DIR_EGRESS }, tcp));
    } else if (kind < 9) {
      out.push(eventRecord({ type: EVENT_DROP, subtype: DROP_POLICY, source: b.id, srcIdentity: a.identity!, dstIdentity: b.identity!, flags: DIR_INGRESS, line: 200, file: 1 }, tcp));
    } else {
      out.push(eventRecord({ type: EVENT_TRACE, subtype: TRACE_FROM_LXC, source: a.id, srcIdentity: a.identity!, dstIdentity: 2, reason: 0, flags: DIR_EGRESS }, icmpEchoPacket(a.addressing.ipv4, "198.51.100.9")));
    }
  }
  return out;
}

/** The daemon's own ingest path (agentFlowPath) over these pods. */
function agentPipeline(endpoints: Endpoint[]) {
  return agentFlowPath({
    nodeName: "bench-node",
    capacity: RING,
    log: silent,
    sources: {
      endpoints: { list: () => endpoints, onChange: () => () => undefined },
      policy: { revision: 1, identity: (id) => (id >= 30000 ? { labels: [`k8s:app=app-${id - 30000}`] } : undefined) },
    },
  });
}

/** Records per second of `handle` over RECORDS_PER_RUN fresh copies. */
function rate(input: Uint8Array[], handle: (record: Uint8Array) => void): number {
  const mask = input.length - 1;
  const started = Bun.nanoseconds();
  for (let i = 0; i < RECORDS_PER_RUN; i++) handle(input[i & mask]!.slice());
  return RECORDS_PER_RUN / ((Bun.nanoseconds() - started) / 1e9);
}

/** The Hubble metrics the agent runs in the metrics rows (every flow counted by at least one). */
const METRICS = "drop,flow,port-distribution";

async function throughput(): Promise<BenchRow[]> {
  const endpoints = pods();
  const input = records(endpoints);
  const baseline: number[] = [];
  const stored: number[] = [];
  const filtered: number[] = [];
  const { pipeline } = agentPipeline(endpoints);
  const follower = agentPipeline(endpoints);
  const matches = compileFilterLists([{ source_pod: ["ns-1/"] }, { verdict: [2] }], []);
  let kept = 0;
  follower.pipeline.onFlow((flow) => void (matches(flow) && kept++));
  // Hubble metrics as the agent feeds them (the record's facts), and as it did before (every Flow built).
  const counted = agentPipeline(endpoints);
  const countedMetrics = await createHubbleMetrics(METRICS);
  counted.pipeline.onFlow((flow) => countedMetrics.handle(flow));
  const built = agentPipeline(endpoints);
  const builtMetrics = await createHubbleMetrics(METRICS);
  const metricsFacts: number[] = [];
  const metricsBuilt: number[] = [];
  for (let run = 0; run < RUNS + 1; run++) {
    const b = rate(input, (r) => decodeEventRecord(r));
    const s = rate(input, (r) => pipeline.onRecord(r));
    const f = rate(input, (r) => follower.pipeline.onRecord(r));
    const mf = rate(input, (r) => counted.pipeline.onRecord(r));
    const mb = rate(input, (r) => {
      built.pipeline.onRecord(r);
      builtMetrics.handle(built.ring.at(built.ring.next - 1)!.flow!);
    });
    // The first round warms the JIT up.
    if (run === 0) continue;
    baseline.push(b);
    stored.push(s);
    filtered.push(f);
    metricsFacts.push(mf);
    metricsBuilt.push(mb);
  }
  const stats = pipeline.stats;
  if (stats.lost + stats.invalid + stats.ignored !== 0 || kept === 0) throw new Error(`unexpected pipeline outcome: ${JSON.stringify(stats)}, ${kept} matched`);
  const method = `${RUNS} runs of ${RECORDS_PER_RUN} byte-exact 176-byte records (copied per record as the ring reader does), ${PODS} pods, ring ${RING}; median; nothing lost; baseline: bare decodeEventRecord of the same copies`;
  return [
    { metric: "Hubble records -> stored flows (parse, enrich, ring), one core", ours: median(stored), baseline: median(baseline), unit: "flows/s", method, better: "higher" },
    {
      metric: "Hubble records -> stored + built Flow messages through a filter (follow reader)",
      ours: median(filtered),
      baseline: median(baseline),
      unit: "flows/s",
      method: `${method}; every Flow built and matched against --from-pod ns-1/ OR --verdict DROPPED`,
      better: "higher",
    },
    {
      metric: `Hubble records -> stored flows + Hubble metrics (${METRICS}), one core`,
      ours: median(metricsFacts),
      baseline: median(metricsBuilt),
      unit: "flows/s",
      method: `${method.replace(/; baseline: .*/, "")}; metrics counted from each stored record's facts (onFlow, as the agent runs them); baseline: the same metrics fed every built Flow (the agent's path before); metrics off, same run: ${(median(stored) / 1000).toFixed(0)}k/s`,
      better: "higher",
    },
  ];
}

/** In a fresh process: RSS growth when a ring of RING is filled, per flow. */
async function memoryChild(mode: "lazy" | "eager"): Promise<void> {
  const endpoints = pods();
  const input = records(endpoints);
  const { pipeline, parser, ring } = agentPipeline(endpoints);
  const settle = async () => {
    Bun.gc(true);
    await Bun.sleep(50);
    Bun.gc(true);
  };
  await settle();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < RING; i++) {
    const copy = input[i & 4095]!.slice();
    if (mode === "lazy") pipeline.onRecord(copy);
    else ring.write(parser.parse(copy));
  }
  await settle();
  const after = process.memoryUsage().rss;
  if (ring.length !== RING) throw new Error(`ring holds ${ring.length}`);
  console.log(JSON.stringify({ bytesPerFlow: (after - before) / RING, totalMb: (after - before) / 2 ** 20 }));
}

function memoryOnce(mode: "lazy" | "eager"): { bytesPerFlow: number; totalMb: number } {
  const child = Bun.spawnSync([process.execPath, import.meta.path, "--memory", mode], { stdout: "pipe", stderr: "pipe" });
  if (child.exitCode !== 0) throw new Error(`memory child failed: ${child.stderr.toString()}`);
  return JSON.parse(child.stdout.toString());
}

function memory(): BenchRow[] {
  const lazy = Array.from({ length: 3 }, () => memoryOnce("lazy"));
  const eager = Array.from({ length: 3 }, () => memoryOnce("eager"));
  const lazyBytes = median(lazy.map((m) => m.bytesPerFlow));
  return [
    {
      metric: `Hubble memory per stored flow (ring of ${RING})`,
      ours: lazyBytes,
      baseline: median(eager.map((m) => m.bytesPerFlow)),
      unit: "bytes",
      method: `RSS growth of a fresh process filling the ring through FlowPipeline / ${RING}, median of 3 (full ring: ${((lazyBytes * RING) / 2 ** 20).toFixed(1)} MiB; target < 64 MB); baseline: the same ring holding fully built Flow objects`,
      better: "lower",
    },
  ];
}

const benchmark: Benchmark = {
  name: "hubble-flows",
  run: async () => [...(await throughput()), ...memory()],
};
export default benchmark;

if (import.meta.main) {
  const at = process.argv.indexOf("--memory");
  if (at >= 0) await memoryChild(process.argv[at + 1] === "eager" ? "eager" : "lazy");
  else console.log(JSON.stringify(await benchmark.run(), null, 2));
}
