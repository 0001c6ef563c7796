/**
 * `cilium policy trace`: the verdict for traffic from one label set to another on one protocol
 * and port, with the reason and the rules that decided it. It evaluates the rules directly on the
 * labels (no identities, no map), with the semantics the map state encodes:
 *
 *   never enforced          -> allowed
 *   a deny rule matches     -> denied by that rule (deny beats allow, whatever is more specific)
 *   direction not enforced  -> allowed (no rule selecting the endpoint turns on default deny)
 *   an allow rule matches   -> allowed by that rule (or by allow-localhost for the host)
 *   otherwise               -> denied: no rule allows
 *
 * Egress is decided by the source's policy and ingress by the destination's; traffic passes when
 * both allow. A side that is not a Cilium endpoint (world, a CIDR, the host, a node, unmanaged)
 * has no policy of its own and allows.
 */
import { LabelSource, type LabelSet } from "../identity/labels.ts";
import type { Contribution } from "./compile.ts";
import { portPrefixMatches } from "./ports.ts";
import type { Repository } from "./repository.ts";
import { directionContributions, directionEnforced, type ResolveOptions } from "./resolve.ts";
import { ruleName, type Direction } from "./rule.ts";

export type TraceVerdict = "allowed" | "denied";

export interface DirectionTrace {
  direction: Direction;
  verdict: TraceVerdict;
  reason: string;
  enforced: boolean;
  /** Rules whose endpointSelector selects the deciding side. */
  selectingRules: string[];
  /** The rules that decided the verdict (empty when no rule did). */
  decidingRules: string[];
}

export interface TraceResult {
  verdict: TraceVerdict;
  egress: DirectionTrace;
  ingress: DirectionTrace;
}

export interface TraceQuery {
  from: LabelSet;
  to: LabelSet;
  /** IP protocol number (ports.ts IpProtocol). */
  protocol: number;
  /** Destination port; the ICMP type for ICMP. */
  port: number;
}

const NON_ENDPOINT_RESERVED = ["world", "host", "remote-node", "kube-apiserver", "unmanaged", "ingress"];

function isEndpoint(labels: LabelSet): boolean {
  return !labels.labels.some((l) => l.source === LabelSource.cidr || (l.source === LabelSource.reserved && NON_ENDPOINT_RESERVED.includes(l.key)));
}

function matches(c: Contribution, peer: LabelSet, protocol: number, port: number): boolean {
  if (c.peers !== "all" && !c.peers.some((s) => s.matches(peer))) return false;
  return c.ports.some((p) => portPrefixMatches(p, protocol, port));
}

const names = (contributions: Contribution[]) => [...new Set(contributions.map((c) => ruleName(c.rule)))];

export function traceDirection(
  repository: Repository,
  direction: Direction,
  subject: LabelSet,
  peer: LabelSet,
  protocol: number,
  port: number,
  options: ResolveOptions,
): DirectionTrace {
  const side = direction === "egress" ? "source" : "destination";
  const result = (verdict: TraceVerdict, reason: string, enforced: boolean, selectingRules: string[] = [], decidingRules: string[] = []) => ({
    direction,
    verdict,
    reason,
    enforced,
    selectingRules,
    decidingRules,
  });
  if (!isEndpoint(subject)) return result("allowed", `the ${side} is not a Cilium endpoint: it has no ${direction} policy`, false);
  if (options.enforcement === "never") return result("allowed", "policy enforcement is disabled (--enable-policy=never)", false);

  const selecting = repository.selecting(subject);
  const selectingRules = [...new Set(selecting.map((s) => ruleName(s.compiled.rule)))];
  const enforced = directionEnforced(selecting, direction, options.enforcement);
  const matching = directionContributions(selecting, direction, true).filter((c) => matches(c, peer, protocol, port));

  const denies = matching.filter((c) => c.deny);
  if (denies.length > 0) return result("denied", `denied by deny rule ${names(denies).join(", ")}`, enforced, selectingRules, names(denies));
  if (!enforced) {
    return result("allowed", `allowed: ${direction} policy is not enforced (no rule selecting the ${side} enables default deny)`, enforced, selectingRules);
  }
  const allows = matching.filter((c) => !c.deny);
  if (allows.length > 0) return result("allowed", `allowed by rule ${names(allows).join(", ")}`, enforced, selectingRules, names(allows));
  if (options.allowLocalhost && direction === "ingress" && peer.withKey("host", LabelSource.reserved).length > 0) {
    return result("allowed", "allowed: traffic from the local host is always allowed (--allow-localhost=always)", enforced, selectingRules);
  }
  return result("denied", `denied: no rule allows ${direction} traffic ${direction === "egress" ? "to the destination" : "from the source"} on this port`, enforced, selectingRules);
}

export function tracePolicy(repository: Repository, query: TraceQuery, options: ResolveOptions): TraceResult {
  const egress = traceDirection(repository, "egress", query.from, query.to, query.protocol, query.port, options);
  const ingress = traceDirection(repository, "ingress", query.to, query.from, query.protocol, query.port, options);
  return { verdict: egress.verdict === "allowed" && ingress.verdict === "allowed" ? "allowed" : "denied", egress, ingress };
}
