/**
 * Allocates from the IPAM in a tight loop and prints each address as soon as it is handed out,
 * until killed (or, on a fast disk, until it made 1000 allocations, then it idles): the
 * crash-consistency test kills it with SIGKILL at arbitrary points.
 * Usage: bun agent-ipam-allocator.ts <state dir> <cidr> <owner prefix>
 */
import { writeSync } from "node:fs";
import { Ipam } from "../../src/agent/ipam/index.ts";
import { parseCidr } from "../../src/net/ipv4.ts";

const [stateDir, range, prefix] = process.argv.slice(2) as [string, string, string];
const ipam = Ipam.open(parseCidr(range), stateDir);
for (let i = 0; i < 1000; i++) {
  const owner = `${prefix}-${i}`;
  const ip = ipam.allocate(owner);
  writeSync(1, `${ip} ${owner}\n`);
  // Release every other one, so the file both grows and shrinks while it is being killed.
  if (i % 2 === 1) ipam.release(ip);
}
setInterval(() => {}, 60_000);
