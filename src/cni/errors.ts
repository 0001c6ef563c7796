/**
 * Failures of the agent API and of the kernel, as the CNI errors a runtime acts on. `what` says
 * which step failed on which attachment ("ADD c0ffee:eth0: allocate an IP").
 */
import { AgentApiError, AgentUnreachableError } from "../agent/api/client.ts";
import type { CniApiError } from "../agent/api/types.ts";
import { CniError, CniErrorCode, PluginErrorCode } from "./spec.ts";

/** HTTP statuses by which the agent says "not now": the runtime should retry, not give up. */
const RETRYABLE_STATUSES = new Set([429, 503]);

/** Whether the agent answered 404: for CHECK, the endpoint simply is not there. */
export function isNotFound(error: unknown): boolean {
  return error instanceof AgentApiError && error.status === 404;
}

/**
 * A failed agent request. The /v1/cni routes name the CNI code themselves (with what a rollback
 * could not undo in details). An unreachable socket (missing, refused, timed out) and a busy
 * agent are "try again later" (11), and the message names the socket path; other answers are
 * AgentRequestFailed (101) with the agent's own message.
 */
export function agentError(error: unknown, what: string): CniError {
  if (error instanceof CniError) return error;
  if (error instanceof AgentUnreachableError) return new CniError(CniErrorCode.TryAgainLater, `${what}: ${error.message}`);
  if (error instanceof AgentApiError) {
    const body = error.body as Partial<CniApiError> | undefined;
    if (typeof body?.["cni-code"] === "number") return new CniError(body["cni-code"], `${what}: ${error.message}`, body.details);
    const code = RETRYABLE_STATUSES.has(error.status) ? CniErrorCode.TryAgainLater : PluginErrorCode.AgentRequestFailed;
    return new CniError(code, `${what}: the cilium agent answered HTTP ${error.status}: ${error.message}`);
  }
  return new CniError(CniErrorCode.IoFailure, `${what}: ${(error as Error)?.message ?? String(error)}`);
}

/** A failed kernel operation (netlink, sysctl, netns) while setting up or removing interfaces. */
export function interfaceError(error: unknown, what: string): CniError {
  if (error instanceof CniError) return error;
  return new CniError(PluginErrorCode.InterfaceSetupFailed, `${what}: ${(error as Error)?.message ?? String(error)}`);
}
