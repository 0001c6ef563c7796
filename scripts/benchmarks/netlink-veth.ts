/**
 * Pod-style veth plumbing with our rtnetlink against the same steps as `ip` commands: create a
 * veth pair, move one end into a namespace, address both ends, bring both up. Everything happens
 * in two throwaway namespaces ("host" and "pod"), never in the machine's own; teardown between
 * iterations is not timed.
 *
 * Runnable alone for a quick check: bun scripts/benchmarks/netlink-veth.ts
 */
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { type Benchmark, type BenchRow, median, sampleMany } from "./harness.ts";

const ITERATIONS = 200;
const tag = `bv${process.pid % 1000}`;
const HOST_NS = `${tag}-host`;
const POD_NS = `${tag}-pod`;
const HOST_END = `${tag}-h`;
const POD_END = `${tag}-p`;
const HOST_IP = "10.250.0.1/24";
const POD_IP = "10.250.0.2/24";

const ADDRESS_AND_UP = [
  ["ip", "addr", "add", HOST_IP, "dev", HOST_END],
  ["ip", "-n", POD_NS, "addr", "add", POD_IP, "dev", POD_END],
  ["ip", "link", "set", HOST_END, "up"],
  ["ip", "-n", POD_NS, "link", "set", POD_END, "up"],
];

/**
 * Two ways to the same end state, each measured with its `ip` equivalent (run from inside the
 * host namespace): moving the peer after creating it costs the kernel an RCU grace period
 * (~15 ms, paid by both sides alike); creating the peer directly in the pod's namespace, as the
 * CNI plugin does, avoids it.
 */
const VARIANTS = [
  {
    metric: "veth pair, peer created in the pod netns, address both, up both",
    ip: [["ip", "link", "add", HOST_END, "type", "veth", "peer", "name", POD_END, "netns", POD_NS], ...ADDRESS_AND_UP],
    peerInNetns: true,
  },
  {
    metric: "veth pair, then move peer to the pod netns, address both, up both",
    ip: [["ip", "link", "add", HOST_END, "type", "veth", "peer", "name", POD_END], ["ip", "link", "set", POD_END, "netns", POD_NS], ...ADDRESS_AND_UP],
    peerInNetns: false,
  },
] as const;

function elapsedMs(fn: () => void): number {
  const start = Bun.nanoseconds();
  fn();
  return (Bun.nanoseconds() - start) / 1e6;
}

function runIp(argv: string[]): void {
  const result = Bun.spawnSync(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.toString().trim()}`);
}

async function measure(): Promise<BenchRow[]> {
  // Leftovers of an interrupted run with the same pid would make the creates fail.
  for (const name of [HOST_NS, POD_NS]) Netns.remove(name, { missingOk: true });
  const handles: { close(): void }[] = [];
  try {
    const hostNs = Netns.create(HOST_NS);
    handles.push(hostNs);
    const podNs = Netns.create(POD_NS);
    handles.push(podNs);
    const host = Netlink.open({ netns: hostNs });
    handles.push(host);
    const pod = Netlink.open({ netns: podNs });
    handles.push(pod);
    // Deleting the host end also removes its peer, wherever it is.
    const teardown = () => host.deleteLink(HOST_END);

    const rows: BenchRow[] = [];
    for (const variant of VARIANTS) {
      const oursSamples = await sampleMany(ITERATIONS, () => {
        const ms = elapsedMs(() => {
          if (variant.peerInNetns) {
            host.createVeth({ name: HOST_END, peerName: POD_END, peerNetns: podNs });
          } else {
            host.createVeth({ name: HOST_END, peerName: POD_END });
            host.setNetns(POD_END, podNs);
          }
          host.addAddress(HOST_END, HOST_IP);
          pod.addAddress(POD_END, POD_IP);
          host.setLinkUp(HOST_END);
          pod.setLinkUp(POD_END);
        });
        teardown();
        return ms;
      });

      // Children inherit the spawning thread's namespace: inside hostNs.run, plain `ip` acts on
      // the host namespace as it would on a node, and `ip -n` reaches into the pod's.
      const ipSamples = await sampleMany(ITERATIONS, () => {
        const ms = hostNs.run(() => elapsedMs(() => variant.ip.forEach((argv) => runIp([...argv]))));
        teardown();
        return ms;
      });

      rows.push({
        metric: variant.metric,
        ours: median(oursSamples),
        baseline: median(ipSamples),
        unit: "ms",
        method:
          `median of ${ITERATIONS} iterations in throwaway namespaces, teardown untimed; ` +
          `ours: one Netlink handle per namespace; baseline: the same ${variant.ip.length} steps as ip (iproute2) commands`,
        better: "lower",
      });
    }
    return rows;
  } finally {
    for (const handle of handles.reverse()) handle.close();
    for (const name of [HOST_NS, POD_NS]) Netns.remove(name, { missingOk: true });
  }
}

const benchmark: Benchmark = {
  name: "netlink-veth",
  unavailable() {
    if (process.getuid?.() !== 0) return "needs root (network namespaces)";
    if (!Bun.which("ip")) return "the baseline needs iproute2's ip";
    return undefined;
  },
  async run() {
    return measure();
  },
};
export default benchmark;

if (import.meta.main) {
  const reason = benchmark.unavailable?.();
  if (reason) {
    console.error(`netlink-veth: not run: ${reason}`);
    process.exit(1);
  }
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
