/**
 * The pod's network namespace (CNI_NETNS), opened with a netlink handle inside it. A path that
 * does not exist is the spec's "unknown container" (3); one that is not a network namespace, or
 * is the host's own, is an invalid CNI_NETNS (4): configuring the host as a pod would cut it off.
 */
import { statSync } from "node:fs";
import { SyscallError } from "../datapath/errors.ts";
import { Netlink } from "../datapath/netlink/index.ts";
import { Netns } from "../datapath/netns.ts";
import { interfaceError } from "./errors.ts";
import { CniError, CniErrorCode } from "./spec.ts";

export interface Sandbox {
  path: string;
  netns: Netns;
  netlink: Netlink;
  close(): void;
}

export function openSandbox(path: string): Sandbox {
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
  const host = statSync("/proc/self/ns/net");
  if (target.dev === host.dev && target.ino === host.ino) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is the host's network namespace, not a pod's`);
  }
  let netns: Netns;
  try {
    netns = Netns.open(path);
  } catch (error) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `cannot open network namespace ${path} (CNI_NETNS): ${(error as Error).message}`);
  }
  try {
    const netlink = Netlink.open({ netns });
    return {
      path,
      netns,
      netlink,
      close() {
        netlink.close();
        netns.close();
      },
    };
  } catch (error) {
    netns.close();
    if (error instanceof SyscallError && error.code === "EINVAL") {
      throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is not a network namespace`);
    }
    throw interfaceError(error, `open netlink in network namespace ${path}`);
  }
}

/** The host's namespace (this process's), where the host ends of the veths live. */
export function openHostNetlink(what: string): Netlink {
  try {
    return Netlink.open();
  } catch (error) {
    throw interfaceError(error, `${what}: open netlink in the host namespace`);
  }
}
