/** JSON answers and the error body `{ code, message }` with the status each kind of failure maps to. */
import type { ApiError } from "./types.ts";
import { AgentError, type AgentErrorKind } from "../errors.ts";
import type { Logger } from "../../logging/index.ts";

export const STATUS_BY_KIND: Record<AgentErrorKind, number> = {
  invalid: 400,
  "not-found": 404,
  conflict: 409,
  // Not 503: that says "try again shortly", and clients (the CNI plugin) would retry forever.
  exhausted: 507,
  datapath: 500,
  unavailable: 503,
};

export function json(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

export function apiError(status: number, message: string, headers?: Record<string, string>): Response {
  const body: ApiError = { code: status, message };
  return Response.json(body, { status, headers });
}

/** An AgentError as its status; anything else is an internal error, logged. */
export function errorResponse(error: unknown, log: Logger): Response {
  if (error instanceof AgentError) return apiError(STATUS_BY_KIND[error.kind], error.message);
  log.error("internal error while serving a request", error);
  return apiError(500, `internal error: ${(error as Error)?.message ?? String(error)}`);
}
