/**
 * Failures the agent's modules report, by kind. The kind is what callers act on: the API maps it
 * to an HTTP status (src/agent/api/errors.ts), the daemon to a log line. Messages are complete
 * sentences for a human: they name the thing, the value and what is wrong with it.
 */
export type AgentErrorKind =
  /** The request is malformed or names something impossible (400). */
  | "invalid"
  /** The thing asked for does not exist (404). */
  | "not-found"
  /** The thing exists already, or is in use (409). */
  | "conflict"
  /** A pool has nothing left to give (507 Insufficient Storage). */
  | "exhausted"
  /** The kernel side failed (500). */
  | "datapath"
  /** A service the agent depends on (the kvstore) cannot be reached now (503). */
  | "unavailable";

export class AgentError extends Error {
  readonly kind: AgentErrorKind;

  constructor(kind: AgentErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AgentError";
    this.kind = kind;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
