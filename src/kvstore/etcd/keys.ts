/**
 * Where the cluster state lives in etcd, after upstream's layout (cilium/state/...):
 *
 *   cilium/state/identities/v1/id/<id>                  -> labels         (no lease; the operator collects unused ones)
 *   cilium/state/identities/v1/value/<labels>/<node>    -> id             (under the node's lease: its claim)
 *   cilium/state/nodes/v1/<cluster>/<node>              -> node JSON      (under the node's lease)
 *   cilium/state/ip/v1/<cluster>/<ip>                   -> ipcache JSON   (under the owning node's lease)
 *   cilium/state/policy/v1/rules                        -> policy JSON    (no lease: outlives every agent)
 *
 * <labels> is the label set as "source:key=value;" per label, sorted, as upstream keys them.
 */
import { LabelSet } from "../../identity/labels.ts";

export const CLUSTER_NAME = "default";

export const IDENTITIES_PREFIX = "cilium/state/identities/v1/";
export const IDENTITY_ID_PREFIX = `${IDENTITIES_PREFIX}id/`;
export const IDENTITY_VALUE_PREFIX = `${IDENTITIES_PREFIX}value/`;
export const NODES_PREFIX = `cilium/state/nodes/v1/${CLUSTER_NAME}/`;
export const IPCACHE_PREFIX = `cilium/state/ip/v1/${CLUSTER_NAME}/`;
export const POLICY_KEY = "cilium/state/policy/v1/rules";

/** "k8s:app=web;k8s:tier=front;": the label set as it appears in keys and identity values. */
export function labelsText(labels: LabelSet): string {
  return labels.toStrings().map((l) => `${l};`).join("");
}

/** The label set of a labelsText; throws LabelError on text that is not one. */
export function parseLabelsText(text: string): LabelSet {
  return LabelSet.parse(text.split(";").filter(Boolean));
}

export const identityKey = (id: number) => `${IDENTITY_ID_PREFIX}${id}`;
/** Every node's claim on a label set lives under this prefix. */
export const identityClaimsPrefix = (labels: string) => `${IDENTITY_VALUE_PREFIX}${labels}/`;
export const identityClaimKey = (labels: string, node: string) => `${identityClaimsPrefix(labels)}${node}`;

/** The label set part of a claim key relative to IDENTITY_VALUE_PREFIX ("<labels>/<node>"). */
export function claimLabels(relativeKey: string): string {
  return relativeKey.slice(0, relativeKey.lastIndexOf("/"));
}
