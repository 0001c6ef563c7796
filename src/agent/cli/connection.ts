/**
 * The debug CLI's side of the agent API: the client for `-H` (or CILIUM_SOCK, or the default
 * socket), and failures as one line for a human, never a stack trace.
 */
import { AgentApiError, AgentClient, AgentUnreachableError, socketPathFromHost } from "../api/client.ts";

/** Shared `-H/--host` flag, as upstream spells it. */
export const hostArg = {
  type: "string",
  alias: "H",
  description: "URI of the agent API: unix:///path/to/cilium.sock or a socket path (default: $CILIUM_SOCK or /var/run/cilium/cilium.sock)",
} as const;

/** Shared `-o/--output` flag. */
export const outputArg = { type: "string", alias: "o", description: "Output format: json" } as const;

export function agentClient(host: string | undefined): AgentClient {
  return new AgentClient(socketPathFromHost(host));
}

/** Text output, or JSON for `-o json`; anything else is refused. */
export function outputFormat(output: string | undefined): "text" | "json" {
  if (output === undefined || output === "") return "text";
  if (output === "json") return "json";
  throw new Error(`unsupported output format ${JSON.stringify(output)}: use -o json`);
}

const UNREACHABLE_HINTS: Record<string, string> = {
  ENOENT: "ENOENT (no such socket): is the agent running?",
  ECONNREFUSED: "ECONNREFUSED (nobody listening): is the agent running?",
  EACCES: "EACCES (permission denied): run as root or as a member of the socket's group",
};

/** One line saying what went wrong, for stderr. */
export function describeFailure(error: unknown, doing?: string): string {
  const prefix = doing ? `${doing}: ` : "";
  if (error instanceof AgentUnreachableError) {
    const hint = UNREACHABLE_HINTS[error.reason] ?? `${error.reason}: is the agent running?`;
    return `${prefix}cannot reach the cilium agent at ${error.socketPath}: ${hint}`;
  }
  if (error instanceof AgentApiError) return `${prefix}${error.message} (HTTP ${error.status})`;
  return `${prefix}${(error as Error)?.message ?? String(error)}`;
}

/** Runs a CLI action; a failure is one line on stderr and exit status 1. */
export async function runCliAction(action: () => Promise<number | void>, doing?: (error: unknown) => string | undefined): Promise<void> {
  try {
    const code = await action();
    if (typeof code === "number") process.exitCode = code;
  } catch (error) {
    console.error(describeFailure(error, doing?.(error)));
    process.exitCode = 1;
  }
}
