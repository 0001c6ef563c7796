/**
 * CNI_NETNS checked by stat alone, so the plugin can do it before asking the agent: a path that
 * does not exist is the spec's "unknown container" (3); one outside nsfs, or the caller's own
 * network namespace, is an invalid CNI_NETNS (4): configuring the host as a pod would cut it off.
 * Stats through Bun.file: no FFI, and no node:fs, whose import alone costs a fresh compiled
 * process (the plugin, once per pod) ~2-3 ms.
 */
import { CniError, CniErrorCode } from "./spec.ts";

/** The plugin's check started early (startSandboxCheck), for the command to await. */
let started: { path: string; check: Promise<void> } | undefined;

/**
 * Starts the check while the plugin still reads its stdin: the stats wait on Bun's I/O threads,
 * which is time the plugin would otherwise spend waiting on the pipe.
 */
export function startSandboxCheck(path: string): void {
  const check = checkSandboxPath(path);
  check.catch(() => undefined); // awaited (and reported) by the command, if it gets that far
  started = { path, check };
}

/** The started check of `path`, or a new one. */
export function sandboxPathChecked(path: string): Promise<void> {
  return started?.path === path ? started.check : checkSandboxPath(path);
}

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
