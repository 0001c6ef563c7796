/** The agent's status (GET /v1/healthz), gathered from its parts. */
import { release } from "node:os";
import { VERSION, GIT_COMMIT } from "../version.ts";
import type { AgentHealthState, StatusResponse, SubsystemStatus } from "./api/types.ts";
import type { AgentConfig } from "./config.ts";
import type { ConntrackGc } from "./conntrack-gc.ts";
import type { EndpointDatapath } from "./endpoint/datapath.ts";
import type { EndpointManager } from "./endpoint/manager.ts";
import { errorMessage } from "./errors.ts";
import type { HealthProblems } from "./health.ts";
import type { Ipam } from "./ipam/index.ts";
import type { PolicyManager } from "./policy/manager.ts";

export interface StatusSources {
  config: AgentConfig;
  ipam: Ipam;
  endpoints: EndpointManager;
  datapath: EndpointDatapath;
  health: HealthProblems;
  policy?: PolicyManager;
  /** --kvstore: the kvstore connection's state. */
  kvstore?: () => SubsystemStatus;
  conntrackGc?: ConntrackGc;
}

export async function collectStatus({ config, ipam, endpoints, datapath, health, policy, kvstore, conntrackGc }: StatusSources): Promise<StatusResponse> {
  const datapathStatus = await datapath.status().then(
    (details) => ({ state: "Ok" as const, msg: "", details }),
    (error) => ({ state: "Failure" as const, msg: `the datapath cannot report its status: ${errorMessage(error)}`, details: {} }),
  );
  const problems = health.list();
  const state: AgentHealthState = datapathStatus.state === "Failure" ? "Failure" : problems.length > 0 ? "Degraded" : "Ok";
  const { allocations, ...ipv4 } = ipam.status();
  const byState = endpoints.idsByState();
  return {
    cilium: { state, msg: state === "Failure" ? datapathStatus.msg : `${VERSION} (${GIT_COMMIT})` },
    // Without --kvstore (single node) there is no kvstore connection to report on.
    kvstore: kvstore?.() ?? { state: "Disabled", msg: "" },
    kubernetes: { state: "Disabled", msg: "" },
    "node-name": config.nodeName,
    kernel: release(),
    datapath: datapathStatus,
    ipam: {
      status: `IPv4: ${ipv4.used}/${ipv4.capacity} allocated from ${ipv4.cidr}`,
      ipv4,
      allocations,
    },
    endpoints: { total: Object.values(byState).reduce((sum, ids) => sum + ids.length, 0), "by-state": byState },
    ...(policy ? { policy: { revision: policy.revision, rules: policy.ruleCount, enforcement: policy.enforcement } } : {}),
    ...(conntrackGc ? { "conntrack-gc": conntrackGc.status() } : {}),
    problems,
  };
}
