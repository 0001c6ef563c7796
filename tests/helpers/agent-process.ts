/**
 * `cilium agent` with the recording fake datapath, as its own process: for tests of what only a
 * process shows (signals, exit codes). Flags as --name=value; the fake's calls are appended to
 * $FAKE_DATAPATH_JOURNAL.
 */
import { runAgent } from "../../src/agent/run.ts";
import { RecordingDatapath } from "./agent-fake-datapath.ts";

const flags: Record<string, string> = {};
for (const arg of process.argv.slice(2)) {
  const match = /^--([^=]+)=(.*)$/.exec(arg);
  if (!match) throw new Error(`expected --name=value, got ${arg}`);
  flags[match[1]!] = match[2]!;
}
process.exitCode = await runAgent(flags, async () => new RecordingDatapath({ journal: process.env.FAKE_DATAPATH_JOURNAL }));
