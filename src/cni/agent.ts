/** The plugin's client of the agent: one blocking request per invocation (see src/agent/api/unix-http.ts). */
import { AgentClient } from "../agent/api/client.ts";
import { unixHttpRequest } from "../agent/api/unix-http.ts";

export function agentClient(socketPath: string, options: { timeoutMs?: number } = {}): AgentClient {
  return new AgentClient(socketPath, { ...options, transport: unixHttpRequest });
}
