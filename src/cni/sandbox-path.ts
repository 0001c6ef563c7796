/**
 * CNI_NETNS checked by stat alone (no FFI, so the plugin can do it before asking the agent): a
 * path that does not exist is the spec's "unknown container" (3); one outside nsfs, or the
 * caller's own network namespace, is an invalid CNI_NETNS (4): configuring the host as a pod
 * would cut it off.
 */
import { statSync } from "node:fs";
import { CniError, CniErrorCode } from "./spec.ts";

export function checkSandboxPath(path: string): void {
  let target: { dev: number; ino: number };
  try {
    target = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new CniError(CniErrorCode.UnknownContainer, `network namespace ${path} (CNI_NETNS) does not exist`);
    }
    throw new CniError(CniErrorCode.InvalidEnvironment, `cannot open network namespace ${path} (CNI_NETNS): ${(error as Error).message}`);
  }
  // Namespace files (bind mounts, /proc/PID/ns/*) all live on the one nsfs.
  const own = statSync("/proc/self/ns/net");
  if (target.dev !== own.dev) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is not a network namespace`);
  if (target.ino === own.ino) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is the host's network namespace, not a pod's`);
}
