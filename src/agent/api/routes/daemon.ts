/** GET /v1/healthz and GET /v1/config. */
import { configByOption, type AgentConfig } from "../../config.ts";
import type { Router } from "../router.ts";
import { json } from "../responses.ts";
import type { StatusResponse } from "../types.ts";

export function addDaemonRoutes(router: Router, deps: { config: AgentConfig; status: () => Promise<StatusResponse> }): void {
  router.add("GET", "/v1/healthz", async () => {
    const status = await deps.status();
    if (status.cilium.state !== "Failure") return json(200, status);
    // 503 so that health checks (the CNI plugin's STATUS among them) see the failure; the body
    // still carries the whole status for `cilium status`.
    return json(503, { code: 503, message: `the cilium agent is in Failure state: ${status.cilium.msg}`, ...status });
  });
  router.add("GET", "/v1/config", () => json(200, configByOption(deps.config)));
}
