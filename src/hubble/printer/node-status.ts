/**
 * Relay node status events in a GetFlows stream, as the upstream CLI reports them: only nodes
 * that became unavailable or failed, on stderr, so flow output stays clean.
 */
import { toJsonLine } from "../proto/json.ts";
import type { OutputFormat } from "./printer.ts";
import type { TimeFormatter } from "./time-format.ts";
import type { Timestamp } from "../flow/types.ts";

/** relay.NodeState */
const NODE_UNAVAILABLE = 2;
const NODE_ERROR = 4;
const NAMES_CUT_OFF = 50;

export interface NodeStatusResponse {
  node_status?: { state_change?: number; node_names?: string[]; message?: string };
  node_name?: string;
  time?: Timestamp;
}

/** Names joined with ", " up to about `target` characters, then "(and N more)". */
export function joinWithCutOff(names: readonly string[], target = NAMES_CUT_OFF): string {
  let length = 0;
  let end = names.length;
  for (let i = 0; i < names.length; i++) {
    length += names[i]!.length + 2;
    if (length > target && i > 0) {
      end = i;
      break;
    }
  }
  const joined = names.slice(0, end).join(", ");
  return end === names.length ? joined : `${joined} (and ${names.length - end} more)`;
}

/** The stderr text for a node status event, or undefined when it is not reported. */
export function nodeStatusText(res: NodeStatusResponse, output: OutputFormat, time: TimeFormatter, first: boolean): string | undefined {
  const s = res.node_status;
  if (!s || (s.state_change !== NODE_UNAVAILABLE && s.state_change !== NODE_ERROR)) return undefined;
  const names = s.node_names ?? [];
  const joined = joinWithCutOff(names);
  switch (output) {
    case "json":
    case "jsonpb":
      return `${toJsonLine("observer.GetFlowsResponse", res)}\n`;
    case "dict":
      return [
        ...(first ? [] : ["------------"]),
        `  TIMESTAMP: ${time(res.time)}`,
        `      STATE: ${s.state_change === NODE_ERROR ? "NODE_ERROR" : "NODE_UNAVAILABLE"}`,
        `      NODES: ${joined}`,
        `    MESSAGE: ${s.message ? JSON.stringify(s.message) : "N/A"}`,
        "",
      ].join("\n");
    default: {
      const prefix = `${time(res.time)} [${res.node_name ?? ""}]`;
      if (s.state_change === NODE_ERROR) return `${prefix}: Error ${JSON.stringify(s.message ?? "")} on ${names.length} nodes: ${joined}\n`;
      return `${prefix}: ${names.length} nodes are unavailable: ${joined}\n`;
    }
  }
}
