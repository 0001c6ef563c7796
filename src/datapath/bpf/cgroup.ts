/**
 * Programs attached to a cgroup (v2) through a BPF link: socket-level hooks such as
 * connect/sendmsg for socket load balancing, or cgroup_skb ingress/egress.
 */
import { closeSync, openSync } from "node:fs";
import { createLink, type BpfLink } from "./link.ts";
import type { BpfProgram } from "./object.ts";

/** enum bpf_attach_type values of the cgroup hooks. */
export const cgroupAttachTypes = {
  inet_ingress: 0,
  inet_egress: 1,
  inet_sock_create: 2,
  sock_ops: 3,
  device: 6,
  inet4_bind: 8,
  inet6_bind: 9,
  inet4_connect: 10,
  inet6_connect: 11,
  inet4_post_bind: 12,
  inet6_post_bind: 13,
  udp4_sendmsg: 14,
  udp6_sendmsg: 15,
  sysctl: 18,
  udp4_recvmsg: 19,
  udp6_recvmsg: 20,
  getsockopt: 21,
  setsockopt: 22,
  inet4_getpeername: 29,
  inet6_getpeername: 30,
  inet4_getsockname: 31,
  inet6_getsockname: 32,
  inet_sock_release: 34,
} as const;

export type CgroupAttachType = keyof typeof cgroupAttachTypes;

/** Attaches `program` to the cgroup directory `cgroupPath` (e.g. /sys/fs/cgroup). Detach with the link. */
export function attachCgroup(program: BpfProgram | number, cgroupPath: string, attachType: CgroupAttachType): BpfLink {
  const cgroupFd = openSync(cgroupPath, "r");
  try {
    return createLink(program, cgroupFd, cgroupAttachTypes[attachType], `cgroup ${cgroupPath} (${attachType})`);
  } finally {
    closeSync(cgroupFd);
  }
}
