/**
 * CNI_NETNS checked by stat alone, so the plugin can do it before asking the agent: a path that
 * does not exist is the spec's "unknown container" (3); one outside nsfs, or the caller's own
 * network namespace, is an invalid CNI_NETNS (4): configuring the host as a pod would cut it off.
 * Stats through Bun.file: no FFI, and no node:fs, whose import alone costs a fresh compiled
 * process (the plugin, once per pod) ~2-3 ms.
 */
import { CniError, CniErrorCode } from "./spec.ts";

export async function checkSandboxPath(path: string): Promise<void> {
  // Namespace files (bind mounts, /proc/PID/ns/*) all live on the one nsfs.
  const [target, own] = await Promise.all([
    Bun.file(path)
      .stat()
      .catch((error: Error & { code?: string }) => error),
    Bun.file("/proc/self/ns/net").stat(),
  ]);
  if (target instanceof Error) {
    if (target.code === "ENOENT" || target.code === "ENOTDIR") {
      throw new CniError(CniErrorCode.UnknownContainer, `network namespace ${path} (CNI_NETNS) does not exist`);
    }
    throw new CniError(CniErrorCode.InvalidEnvironment, `cannot open network namespace ${path} (CNI_NETNS): ${target.message}`);
  }
  if (target.dev !== own.dev) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is not a network namespace`);
  if (target.ino === own.ino) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is the host's network namespace, not a pod's`);
}
