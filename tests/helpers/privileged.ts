/**
 * Privileged tests (root, namespaces, BPF) run in the same `bun test` as unit tests. Off root
 * they are skipped with a visible notice; in CI (CI=true) a missing privilege is a failure,
 * never a silent skip.
 */
import { describe } from "bun:test";

export const isRoot = process.getuid?.() === 0;

function privilegesAvailable(suite: string): boolean {
  if (isRoot) return true;
  if (process.env.CI) throw new Error(`${suite}: privileged tests need root in CI`);
  console.warn(`skipping privileged suite "${suite}": not root`);
  return false;
}

/** A describe block that needs root, network namespaces and BPF. */
export function describePrivileged(name: string, body: () => void): void {
  describe.skipIf(!privilegesAvailable(name))(name, body);
}
