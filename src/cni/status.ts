/**
 * STATUS: whether ADD can work now, i.e. whether the agent answers its health check. Success is
 * exit 0 with no output; otherwise "plugin not available" (50), naming the socket.
 */
import { AgentApiError } from "../agent/api/client.ts";
import { agentClient } from "./agent.ts";
import type { NetworkConfig } from "./config.ts";
import type { CniEnvironment } from "./env.ts";
import { CniError, CniErrorCode } from "./spec.ts";

/** Runtimes poll STATUS; a hung agent must not hang them for the client's default 30 s. */
const STATUS_TIMEOUT_MS = 5000;

export async function status(_env: CniEnvironment, config: NetworkConfig): Promise<undefined> {
  try {
    await agentClient(config.socketPath, { timeoutMs: STATUS_TIMEOUT_MS }).healthz();
  } catch (error) {
    const reason =
      error instanceof AgentApiError
        ? `the cilium agent at ${config.socketPath} is not healthy: HTTP ${error.status}: ${error.message}`
        : (error as Error).message;
    throw new CniError(CniErrorCode.PluginNotAvailable, `STATUS: ${reason}`);
  }
  return undefined;
}
