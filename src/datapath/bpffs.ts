/**
 * The BPF filesystem where maps and links are pinned so the datapath outlives the agent.
 * A --bpf-root below an existing bpffs mount (e.g. /sys/fs/bpf/node1) is used as is; a root
 * that is not on bpffs gets a bpffs mounted on it.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { check, cString, libc } from "./libc.ts";

/** The mount point and filesystem type that `path` lives on, from /proc/self/mounts. */
export function mountOf(path: string): { mountPoint: string; fsType: string } {
  let best = { mountPoint: "/", fsType: "" };
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [, mountPoint, fsType] = line.split(" ");
    if (!mountPoint || !fsType) continue;
    const decoded = mountPoint.replace(/\\040/g, " ");
    const covers = decoded === "/" || path === decoded || path.startsWith(`${decoded}/`);
    // Later lines win at equal length: they are mounted on top.
    if (covers && decoded.length >= best.mountPoint.length) best = { mountPoint: decoded, fsType };
  }
  return best;
}

export const DEFAULT_BPFFS = "/sys/fs/bpf";

/**
 * Makes sure `root` is a directory on a bpffs. A root below /sys/fs/bpf needs /sys/fs/bpf itself
 * mounted (sysfs allows no directories of ours); any other root gets a bpffs of its own.
 */
export function ensureBpffs(root: string): void {
  const mountPoint = root === DEFAULT_BPFFS || root.startsWith(`${DEFAULT_BPFFS}/`) ? DEFAULT_BPFFS : root;
  if (mountOf(mountPoint).fsType !== "bpf") {
    mkdirSync(mountPoint, { recursive: true, mode: 0o700 });
    check(`mount bpffs on ${mountPoint}`, libc.mount(cString("bpffs"), cString(mountPoint), cString("bpf"), 0, cString("mode=0700")));
  }
  mkdirSync(root, { recursive: true, mode: 0o700 });
}
