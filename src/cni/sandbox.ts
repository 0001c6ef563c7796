/**
 * The pod's network namespace (CNI_NETNS), opened with a netlink handle inside it; the path is
 * checked first (sandbox-path.ts: codes 3 and 4).
 */
import { SyscallError } from "../datapath/errors.ts";
import { Netlink } from "../datapath/netlink/index.ts";
import { Netns } from "../datapath/netns.ts";
import { interfaceError } from "./errors.ts";
import { checkSandboxPath } from "./sandbox-path.ts";
import { CniError, CniErrorCode } from "./spec.ts";

export interface Sandbox {
  path: string;
  netns: Netns;
  netlink: Netlink;
  close(): void;
}

export function openSandbox(path: string): Sandbox {
  checkSandboxPath(path);
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
