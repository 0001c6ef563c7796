/** `cilium monitor`: the datapath's events from the agent's monitor socket, printed as upstream does. */
import { defineCommand } from "citty";
import { writeSync } from "node:fs";
import { hostArg, runCliAction } from "../agent/cli/connection.ts";
import { monitorSocketPath, openMonitorStream } from "../agent/cli/monitor-client.ts";
import { formatLost, formatMonitorRecord, matchesFilter, MONITOR_EVENT_TYPES, type MonitorFilter, type MonitorVerbosity } from "../agent/cli/monitor-format.ts";
import { repeatedFlag } from "../agent/cli/policy-format.ts";
import { decodeEventRecord } from "../hubble/parser/record.ts";

export default defineCommand({
  meta: { name: "monitor", description: "Display BPF program events (drops, traces, policy verdicts)" },
  args: {
    type: { type: "string", alias: "t", description: `Filter by event types: ${Object.keys(MONITOR_EVENT_TYPES).join(", ")} (repeatable)` },
    from: { type: "string", description: "Filter by source endpoint id (repeatable)" },
    to: { type: "string", description: "Filter by destination endpoint id (repeatable)" },
    "related-to": { type: "string", description: "Filter by either source or destination endpoint id (repeatable)" },
    verbose: { type: "boolean", alias: "v", description: "Enable verbose output (-v, -vv)" },
    json: { type: "boolean", alias: "j", description: "Enable json output. Shadows -v flag" },
    numeric: { type: "boolean", alias: "n", description: "Display all security identities as numeric values" },
    "monitor-socket": { type: "string", description: "Monitor socket path (default: $CILIUM_MONITOR_SOCK, else monitor1_2.sock next to the API socket of -H)" },
    host: hostArg,
  },
  run: ({ args, rawArgs }) =>
    runCliAction(async () => {
      const filter: MonitorFilter = {
        types: repeatedFlag(rawArgs, ["-t", "--type"]).map(eventType),
        from: repeatedFlag(rawArgs, ["--from"]).map((v) => endpointId(v, "--from")),
        to: repeatedFlag(rawArgs, ["--to"]).map((v) => endpointId(v, "--to")),
        relatedTo: repeatedFlag(rawArgs, ["--related-to"]).map((v) => endpointId(v, "--related-to")),
      };
      const verbosity: MonitorVerbosity = args.json ? "json" : verbosityOf(rawArgs);
      const numeric = Boolean(args.numeric);
      const socketPath = monitorSocketPath({ monitorSocket: args["monitor-socket"], host: args.host });
      const ifname = await linkNames();
      const stream = await openMonitorStream(socketPath, (frames) => {
        let out = "";
        for (const frame of frames) {
          if (frame.kind === "lost") {
            out += formatLost(frame.count, frame.where, verbosity);
            continue;
          }
          const record = decodeEventRecord(frame.record);
          if (matchesFilter(record, filter)) out += formatMonitorRecord(record, { verbosity, numeric, ifname });
        }
        if (out) write(out);
      });
      process.stderr.write("Press Ctrl-C to quit\n");
      const interrupted = new Promise<"interrupted">((resolve) => process.once("SIGINT", () => resolve("interrupted")));
      const outcome = await Promise.race([stream.closed.then(() => "closed" as const), interrupted]);
      if (outcome === "interrupted") {
        process.stderr.write("\nReceived an interrupt, disconnecting from monitor...\n\n");
        stream.close();
        return 0;
      }
      throw new Error(`the agent closed the monitor connection on ${socketPath}`);
    }),
});

function eventType(name: string): number {
  const type = MONITOR_EVENT_TYPES[name as keyof typeof MONITOR_EVENT_TYPES];
  if (type === undefined) throw new Error(`unknown event type ${JSON.stringify(name)} for -t/--type: use one of ${Object.keys(MONITOR_EVENT_TYPES).join(", ")}`);
  return type;
}

function endpointId(value: string, flag: string): number {
  const id = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(id >= 0 && id <= 0xffff)) throw new Error(`${flag} ${JSON.stringify(value)}: must be an endpoint id (0-65535)`);
  return id;
}

/** -v: debug (the same lines as default for these events, as upstream); -vv: verbose dumps. */
function verbosityOf(rawArgs: readonly string[]): MonitorVerbosity {
  let count = 0;
  for (const arg of rawArgs) {
    if (arg === "--") break;
    if (arg === "--verbose" || arg === "-v") count++;
    else if (/^-v+$/.test(arg)) count += arg.length - 1;
  }
  return count >= 2 ? "verbose" : count === 1 ? "debug" : "info";
}

/** Interface names of this network namespace by ifindex, refreshed when an unknown one shows up. */
async function linkNames(): Promise<(ifindex: number) => string | undefined> {
  const { Netlink } = await import("../datapath/netlink/index.ts");
  let names = new Map<number, string>();
  let refreshedAt = 0;
  const refresh = () => {
    refreshedAt = Date.now();
    try {
      const netlink = Netlink.open();
      try {
        names = new Map(netlink.links().map((link) => [link.index, link.name]));
      } finally {
        netlink.close();
      }
    } catch {
      // Names are a nicety: without netlink, ifindexes print as numbers.
    }
  };
  refresh();
  return (ifindex) => {
    if (ifindex === 0) return undefined;
    if (!names.has(ifindex) && Date.now() - refreshedAt > 1000) refresh();
    return names.get(ifindex);
  };
}

function write(text: string): void {
  try {
    writeSync(1, text);
  } catch (error) {
    // A closed pipe (`| head`) ends the monitor quietly.
    if ((error as NodeJS.ErrnoException).code === "EPIPE") process.exit(0);
    throw error;
  }
}
