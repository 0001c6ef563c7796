/** `cilium relay` (argv[0] `hubble-relay`): Hubble Relay, with upstream's flag names and defaults. */
import { defineCommand } from "citty";
import { parseDuration } from "../agent/cli/policy-format.ts";

export default defineCommand({
  meta: { name: "relay", description: "Run Hubble Relay: the cluster-wide observer API over every node's Hubble server" },
  args: {
    "listen-address": { type: "string", description: "Address to serve the observer API on", default: ":4245" },
    "peer-service": { type: "string", description: "Address of the Peer service (a node's Hubble server)", default: "unix:///var/run/cilium/hubble.sock" },
    "sort-buffer-len-max": { type: "string", description: "Most flows held to put the nodes' streams in time order", default: "100" },
    "sort-buffer-drain-timeout": { type: "string", description: "Flush the sort buffer when no flow arrived for this long", default: "1s" },
    "dial-timeout": { type: "string", description: "How long to wait for a node to connect", default: "5s" },
    "retry-timeout": { type: "string", description: "Wait before reconnecting to the Peer service", default: "30s" },
  },
  async run({ args }) {
    const sortBufferMaxLength = Number(args["sort-buffer-len-max"]);
    if (!Number.isInteger(sortBufferMaxLength) || sortBufferMaxLength < 1) {
      console.error(`--sort-buffer-len-max ${JSON.stringify(args["sort-buffer-len-max"])}: expected a positive integer`);
      process.exitCode = 2;
      return;
    }
    let durations: number[];
    try {
      durations = (["sort-buffer-drain-timeout", "dial-timeout", "retry-timeout"] as const).map((flag) => parseDuration(args[flag], `--${flag}`));
    } catch (error) {
      console.error((error as Error).message);
      process.exitCode = 2;
      return;
    }
    const [{ logger }, { startRelay }, { VERSION }] = await Promise.all([import("../logging/index.ts"), import("../hubble/relay/index.ts"), import("../version.ts")]);
    const log = logger("hubble-relay");
    try {
      const relay = await startRelay({
        listenAddress: args["listen-address"],
        peerService: args["peer-service"],
        version: VERSION,
        sortBufferMaxLength,
        sortBufferDrainTimeoutMs: durations[0]!,
        dialTimeoutMs: durations[1]!,
        retryTimeoutMs: durations[2]!,
        log,
      });
      const stop = () => void relay.stop().then(() => process.exit(0));
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    } catch (error) {
      log.error((error as Error).message);
      process.exitCode = 1;
    }
  },
});
