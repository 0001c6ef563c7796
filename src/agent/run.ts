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
  // Listening from the start: the API answers before startDaemon returns, and a SIGTERM in
  // between would otherwise kill the process without the shutdown.
  const signals = stopOnSignals(log);
  let daemon: Daemon;
  try {
    const { config, ignoredConfigDirEntries } = loadAgentConfig(flags, process.env);
    if (ignoredConfigDirEntries.length > 0) log.warn(`ignoring config dir entries that name no option: ${ignoredConfigDirEntries.join(", ")}`);
    daemon = await startDaemon({ config, datapath: await createDatapath() });
  } catch (error) {
    signals.remove();
    if (error instanceof ConfigError) {
      for (const problem of error.problems) console.error(`invalid configuration: ${problem}`);
      return 2;
    }
    log.error(`the agent cannot start: ${errorMessage(error)}`);
    return 1;
  }
  signals.started(daemon);
  return 0;
}

/** SIGTERM/SIGINT stop the daemon, at once or, when one comes during start-up, once it is up. */
function stopOnSignals(log: ReturnType<typeof logger>): { started(daemon: Daemon): void; remove(): void } {
  let daemon: Daemon | undefined;
  let received: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals, running: Daemon) => {
    log.info(`${signal} received: stopping`);
    running.stop().then(
      () => process.exit(0),
      (error) => {
        log.error(`the agent did not stop cleanly: ${errorMessage(error)}`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      log.warn(`${signal} again: exiting without finishing the shutdown`);
      process.exit(1);
    }
    received = signal;
    if (daemon) stop(signal, daemon);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return {
    started(running) {
      daemon = running;
      if (received) stop(received, running);
    },
    remove() {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}
