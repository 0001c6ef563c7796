/**
 * `cilium bpf ...`: the kernel's own view, read from the maps pinned under the bpf root. Works
 * without the agent, as upstream's does: the maps outlive it.
 */
import { defineCommand } from "citty";

const bpfRootArg = {
  "bpf-root": { type: "string", description: "Path to the BPF filesystem root of the node", default: "/sys/fs/bpf" },
  output: { type: "string", alias: "o", description: "Output format: json" },
} as const;

const endpointList = defineCommand({
  meta: { name: "list", description: "List local endpoint entries" },
  args: bpfRootArg,
  async run({ args }) {
    const { listPinnedEndpoints } = await import("../datapath/pinned.ts");
    const entries = listPinnedEndpoints(args["bpf-root"]).sort((a, b) => a.ip.localeCompare(b.ip, "en", { numeric: true }));
    if (args.output === "json") {
      console.log(JSON.stringify(entries, null, 2));
      return;
    }
    const rows = entries.map(({ ip, info }) => [
      `${ip}:0`,
      `id=${String(info.lxcId).padEnd(5)} sec_id=${String(info.secIdentity).padEnd(5)} flags=0x${info.flags.toString(16).padStart(4, "0")} ifindex=${String(info.ifindex).padEnd(3)} mac=${info.mac.toUpperCase()} nodemac=${info.nodeMac.toUpperCase()}`,
    ]);
    const width = Math.max("IP ADDRESS".length, ...rows.map((r) => r[0]!.length)) + 3;
    console.log(`${"IP ADDRESS".padEnd(width)}LOCAL ENDPOINT INFO`);
    for (const [ip, info] of rows) console.log(`${ip!.padEnd(width)}${info}`);
  },
});

const ipcacheList = defineCommand({
  meta: { name: "list", description: "List the ipcache: prefix -> security identity (and the node to tunnel to)" },
  args: bpfRootArg,
  async run({ args }) {
    const { listPinnedIpcache } = await import("../datapath/pinned.ts");
    const entries = listPinnedIpcache(args["bpf-root"]);
    if (args.output === "json") {
      console.log(JSON.stringify(entries, null, 2));
      return;
    }
    const width = Math.max("IP PREFIX/ADDRESS".length, ...entries.map((e) => e.cidr.length)) + 3;
    console.log(`${"IP PREFIX/ADDRESS".padEnd(width)}IDENTITY`);
    for (const e of entries) console.log(`${e.cidr.padEnd(width)}identity=${e.identity} encryptkey=0 tunnelendpoint=${e.tunnelEndpoint ?? "0.0.0.0"}`);
  },
});

const policyGet = defineCommand({
  meta: { name: "get", description: "An endpoint's policy entries and enforcement, as the kernel holds them" },
  args: { id: { type: "positional", required: true, description: "Numeric endpoint ID" }, ...bpfRootArg },
  async run({ args }) {
    try {
      if (!/^\d+$/.test(args.id)) throw new Error(`endpoint ID ${JSON.stringify(args.id)}: must be a number`);
      const [{ readPinnedPolicy }, { formatBpfPolicy }] = await Promise.all([import("../datapath/pinned.ts"), import("../agent/cli/policy-format.ts")]);
      const policy = readPinnedPolicy(args["bpf-root"], Number(args.id));
      if (args.output === "json") console.log(JSON.stringify(policy, null, 2));
      else process.stdout.write(formatBpfPolicy(Number(args.id), policy));
    } catch (error) {
      console.error(`cannot read the policy of endpoint ${args.id}: ${(error as Error).message}`);
      process.exitCode = 1;
    }
  },
});

/** Reads both maps from their pins, so it works without the agent; JSON keeps the raw values. */
async function listConntrack(which: "ct" | "nat", args: { "bpf-root": string; output?: string }): Promise<void> {
  try {
    const [{ openConntrackMaps }, { monotonicNs }, format] = await Promise.all([
      import("../datapath/conntrack-gc.ts"),
      import("../datapath/clock.ts"),
      import("../agent/cli/conntrack-format.ts"),
    ]);
    const maps = openConntrackMaps(args["bpf-root"]);
    try {
      const now = monotonicNs();
      const lines =
        which === "ct"
          ? maps.ct.batchLookup().map(([key, entry]) => ({ key, entry, text: format.formatCtEntry(key, entry, now) }))
          : maps.snat.batchLookup().map(([key, entry]) => ({ key, entry, text: format.formatNatEntry(key, entry) }));
      lines.sort((a, b) => a.text.localeCompare(b.text, "en", { numeric: true }));
      if (args.output === "json") {
        const replacer = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value);
        console.log(JSON.stringify(lines.map(({ key, entry }) => ({ key, entry })), replacer, 2));
      } else if (lines.length > 0) console.log(lines.map((line) => line.text).join("\n"));
    } finally {
      maps.close();
    }
  } catch (error) {
    console.error(`cannot list the ${which === "ct" ? "conntrack" : "NAT"} table: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

const ctListGlobal = defineCommand({
  meta: { name: "global", description: "List the global connection tracking table (cilium_ct4_global)" },
  args: bpfRootArg,
  run: ({ args }) => listConntrack("ct", args),
});

const natList = defineCommand({
  meta: { name: "list", description: "List the masquerade table (cilium_snat_v4_external)" },
  args: bpfRootArg,
  run: ({ args }) => listConntrack("nat", args),
});

export default defineCommand({
  meta: { name: "bpf", description: "Direct access to local BPF maps" },
  subCommands: {
    endpoint: defineCommand({ meta: { name: "endpoint", description: "Local endpoint map" }, subCommands: { list: endpointList } }),
    policy: defineCommand({ meta: { name: "policy", description: "Local policy map" }, subCommands: { get: policyGet } }),
    ipcache: defineCommand({ meta: { name: "ipcache", description: "IP cache map" }, subCommands: { list: ipcacheList } }),
    ct: defineCommand({
      meta: { name: "ct", description: "Connection tracking tables" },
      subCommands: { list: defineCommand({ meta: { name: "list", description: "List connection tracking entries" }, subCommands: { global: ctListGlobal } }) },
    }),
    nat: defineCommand({ meta: { name: "nat", description: "NAT mapping tables" }, subCommands: { list: natList } }),
  },
});
