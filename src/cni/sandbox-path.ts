/**
 * CNI_NETNS checked by stat alone, so the plugin can do it before asking the agent (and the
 * agent again before it opens it): a path that does not exist is the spec's "unknown container"
 * (3); one outside nsfs, or the caller's own network namespace, is an invalid CNI_NETNS (4):
 * configuring the host as a pod would cut it off. Stats through libc-io's small dlopen: no
 * node:fs, whose import alone costs a fresh process (the plugin, once per pod) ~2 ms.
 */
import { statIdentity } from "../datapath/libc-io.ts";
import { CniError, CniErrorCode } from "./spec.ts";

export function checkSandboxPath(path: string): void {
  const target = statIdentity(path);
  const own = statIdentity("/proc/self/ns/net");
  if (target instanceof Error) {
    if (target.code === "ENOENT" || target.code === "ENOTDIR") {
      throw new CniError(CniErrorCode.UnknownContainer, `network namespace ${path} (CNI_NETNS) does not exist`);
    }
    throw new CniError(CniErrorCode.InvalidEnvironment, `cannot open network namespace ${path} (CNI_NETNS): ${target.message}`);
  }
  if (own instanceof Error) throw new CniError(CniErrorCode.IoFailure, `cannot read our own network namespace: ${own.message}`);
  // Namespace files (bind mounts, /proc/PID/ns/*) all live on the one nsfs.
  if (target.dev !== own.dev) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is not a network namespace`);
  if (target.ino === own.ino) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is the host's network namespace, not a pod's`);
}
