/**
 * `cilium agent` as a process: configuration from flags, config dir and environment, the daemon,
 * and shutdown on SIGTERM/SIGINT (stop accepting, remove the socket, release the datapath, exit 0).
 */
import { logger } from "../logging/index.ts";
import { loadAgentConfig } from "./config-sources.ts";
import { ConfigError } from "./config.ts";
import { startDaemon, type Daemon } from "./daemon.ts";
import type { EndpointDatapath } from "./endpoint/datapath.ts";
import { errorMessage } from "./errors.ts";

/**
 * Starts the agent; resolves once it serves (the open socket keeps the process alive). Answers a
 * non-zero exit code, with the reason on stderr, when it cannot start.
 */
export async function runAgent(
  flags: Record<string, string | boolean | undefined>,
  createDatapath: () => Promise<EndpointDatapath>,
): Promise<number> {
  const log = logger("daemon");
  let daemon: Daemon;
  try {
    const { config, ignoredConfigDirEntries } = loadAgentConfig(flags, process.env);
    if (ignoredConfigDirEntries.length > 0) log.warn(`ignoring config dir entries that name no option: ${ignoredConfigDirEntries.join(", ")}`);
    daemon = await startDaemon({ config, datapath: await createDatapath() });
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) console.error(`invalid configuration: ${problem}`);
      return 2;
    }
    log.error(`the agent cannot start: ${errorMessage(error)}`);
    return 1;
  }
  stopOnSignals(daemon, log);
  return 0;
}

function stopOnSignals(daemon: Daemon, log: ReturnType<typeof logger>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without finishing the shutdown`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal} received: stopping`);
    daemon.stop().then(
      () => process.exit(0),
      (error) => {
        log.error(`the agent did not stop cleanly: ${errorMessage(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
