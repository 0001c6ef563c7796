/**
 * The few libc entry points the datapath needs (netlink sockets, namespaces, mounts), through
 * bun:ffi: those of libc-io.ts plus the rest. Only src/datapath imports this module.
 */
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { io } from "./libc-io.ts";

export { check, cString, EAGAIN, EINTR, errno, ETIMEDOUT, SO_RCVTIMEO, SOCK_CLOEXEC, SOL_SOCKET } from "./libc-io.ts";

const { i32, u32, i64, u64, ptr } = FFIType;

const lib = dlopen("libc.so.6", {
  bind: { args: [i32, ptr, u32], returns: i32 },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  sendto: { args: [i32, ptr, u64, i32, ptr, u32], returns: i64 },
  recvfrom: { args: [i32, ptr, u64, i32, ptr, ptr], returns: i64 },
  setns: { args: [i32, i32], returns: i32 },
  unshare: { args: [i32], returns: i32 },
  mount: { args: [ptr, ptr, ptr, u64, ptr], returns: i32 },
  umount2: { args: [ptr, i32], returns: i32 },
  gettid: { args: [], returns: i32 },
  vsnprintf: { args: [ptr, u64, ptr, ptr], returns: i32 },
  // Namespace handles and /proc/sys files are opened here rather than through node:fs so that
  // O_CLOEXEC is explicit and the syscall provably runs on this (possibly setns'd) thread.
  // open(2) is variadic; the mode travels in the third integer register either way on the
  // SysV x86-64 and AAPCS64 ABIs, so a fixed three-argument signature is sound there.
  open: { args: [ptr, i32, u32], returns: i32 },
  unlink: { args: [ptr], returns: i32 },
  // BPF ring buffers are read through their mmap'ed pages (bpf/ringbuf.ts). mmap's result is
  // taken as an integer so MAP_FAILED ((void *)-1) reads as -1.
  mmap: { args: [ptr, u64, i32, i32, i32, i64], returns: i64 },
  munmap: { args: [ptr, u64], returns: i32 },
  sysconf: { args: [i32], returns: i64 },
  clock_gettime: { args: [i32, ptr], returns: i32 },
});

export const libc = { ...io, ...lib.symbols };

export const CLOCK_MONOTONIC = 1;
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_DGRAM = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 2;
export const NETLINK_ROUTE = 0;
export const NETLINK_CAP_ACK = 10;
export const MSG_PEEK = 2;
export const MSG_TRUNC = 0x20;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_CLOEXEC = 0o2000000;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const ENOENT = 2;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENODEV = 19;

export type { Pointer };

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const _SC_PAGESIZE = 30;
