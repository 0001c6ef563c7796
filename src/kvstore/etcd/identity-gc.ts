/**
 * Garbage collection of identities (for the operator): a master key no node claims any more is
 * deleted, in a transaction that requires it unchanged and still unclaimed, so a node claiming
 * it at the same moment either wins (the master stays) or finds it gone and allocates anew.
 */
import type { EtcdClient } from "./client.ts";
import { claimLabels, identityClaimsPrefix, identityKey, IDENTITY_ID_PREFIX, IDENTITY_VALUE_PREFIX } from "./keys.ts";

export interface IdentityGcResult {
  /** Numbers deleted, ascending. */
  deleted: number[];
  /** Numbers still claimed by some node. */
  inUse: number;
}

export async function collectUnusedIdentities(client: EtcdClient): Promise<IdentityGcResult> {
  const [masters, claims] = await Promise.all([client.range(IDENTITY_ID_PREFIX), client.range(IDENTITY_VALUE_PREFIX)]);
  const claimed = new Set(claims.entries.map((e) => claimLabels(e.key.slice(IDENTITY_VALUE_PREFIX.length))));
  const deleted: number[] = [];
  let inUse = 0;
  for (const master of masters.entries) {
    if (claimed.has(master.value)) {
      inUse++;
      continue;
    }
    const id = Number(master.key.slice(IDENTITY_ID_PREFIX.length));
    const result = await client.txn(
      [
        { key: identityKey(id), target: "mod", result: "equal", revision: master.modRevision },
        { key: identityClaimsPrefix(master.value), prefix: true, target: "create", result: "equal", revision: 0 },
      ],
      [{ delete: { key: identityKey(id) } }],
    );
    if (result.succeeded) deleted.push(id);
    else inUse++;
  }
  return { deleted: deleted.sort((a, b) => a - b), inUse };
}
