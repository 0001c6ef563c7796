/**
 * Writes datapath events at a steady rate from its own process (so the reader under test keeps
 * its core): bpf_lxc's cil_from_container over the maps pinned under <bpf-root>, run with
 * BPF_PROG_TEST_RUN every 10 ms with enough repeats for <records/s> (two records per run at
 * aggregation none). Prints the records it caused when done.
 *
 *   bun event-flood.ts <bpf-root> <netns path> <records/s> <seconds> <packet hex>
 */
import { BpfObject, testRun } from "../../../src/datapath/bpf/index.ts";
import { Netns } from "../../../src/datapath/netns.ts";
import { readObject } from "../../../src/datapath/objects.ts";
import { mapPinRoot } from "../../../src/datapath/pinned.ts";

const [bpfRoot, netnsPath, rateText, secondsText, packetHex] = process.argv.slice(2);
const TICK_MS = 10;
const runsPerTick = Math.max(1, Math.round(Number(rateText) / 2 / (1000 / TICK_MS)));
const lxc = BpfObject.open(readObject("bpf_lxc"), { name: "bpf_lxc", pinRoot: mapPinRoot(bpfRoot!) });
lxc.load();
const program = lxc.program("cil_from_container");
const netns = Netns.open(netnsPath!);
const data = new Uint8Array(Buffer.from(packetHex!, "hex"));
const start = performance.now();
const end = start + Number(secondsText) * 1000;
let ticks = 0;
while (performance.now() < end) {
  netns.run(() => testRun(program, { data, repeat: runsPerTick }));
  ticks++;
  const next = start + ticks * TICK_MS;
  const wait = next - performance.now();
  if (wait > 0) await Bun.sleep(wait);
}
console.log(ticks * runsPerTick * 2);
netns.close();
lxc.close();
