/**
 * Reserved identities: fixed numbers with fixed labels, the same on every node, never allocated.
 * Numbers and labels as upstream (pkg/identity/numericidentity.go, reservedIdentityLabels); note
 * that kube-apiserver carries reserved:remote-node too, so "remote-node" selects it.
 */
import { LabelSet, LabelSource } from "./labels.ts";
import type { Identity } from "./identity.ts";

export const ReservedIdentity = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
  kubeApiServer: 7,
  ingress: 8,
} as const;

/** The reserved label names ("reserved:<name>"), by identity. */
const NAMES: Record<number, string> = {
  [ReservedIdentity.host]: "host",
  [ReservedIdentity.world]: "world",
  [ReservedIdentity.unmanaged]: "unmanaged",
  [ReservedIdentity.health]: "health",
  [ReservedIdentity.init]: "init",
  [ReservedIdentity.remoteNode]: "remote-node",
  [ReservedIdentity.kubeApiServer]: "kube-apiserver",
  [ReservedIdentity.ingress]: "ingress",
};

const reservedLabel = (name: string) => ({ source: LabelSource.reserved, key: name, value: "" });

export const RESERVED_IDENTITIES: readonly Identity[] = Object.entries(NAMES).map(([id, name]) => ({
  id: Number(id),
  labels: LabelSet.of(
    Number(id) === ReservedIdentity.kubeApiServer ? [reservedLabel(name), reservedLabel(NAMES[ReservedIdentity.remoteNode]!)] : [reservedLabel(name)],
  ),
}));

const BY_KEY = new Map(RESERVED_IDENTITIES.map((i) => [i.labels.key, i.id]));

/** "host", "world", ... for a reserved identity; undefined otherwise. */
export function reservedIdentityName(id: number): string | undefined {
  return NAMES[id];
}

export function reservedIdentityLabels(id: number): LabelSet | undefined {
  return RESERVED_IDENTITIES.find((i) => i.id === id)?.labels;
}

/** The reserved identity whose labels are exactly `labels`, if any. */
export function reservedIdentityFor(labels: LabelSet): number | undefined {
  return BY_KEY.get(labels.key);
}

/** Whether any label is of the reserved source (such sets are never allocated). */
export function hasReservedLabel(labels: LabelSet): boolean {
  return labels.labels.some((l) => l.source === LabelSource.reserved);
}
