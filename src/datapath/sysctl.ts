/**
 * Kernel parameters under /proc/sys. The net.* ones are per network namespace: /proc/sys/net
 * shows the namespace of the thread that opens the file, so with `netns` the open, read and
 * write all happen inside Netns.run, through libc on this thread.
 */
import { check, cString, libc, O_CLOEXEC, O_RDONLY, O_WRONLY } from "./libc.ts";
import type { Netns } from "./netns.ts";

export interface SysctlOptions {
  netns?: Netns;
}

/**
 * "net.ipv4.ip_forward" -> /proc/sys/net/ipv4/ip_forward. A key with slashes is taken as a
 * path already ("net/ipv4/conf/eth0.100/rp_filter"), as sysctl(8) allows, for names with dots.
 */
export function sysctlPath(key: string): string {
  const relative = key.includes("/") ? key : key.replaceAll(".", "/");
  if (!/^[\w.:@-]+(\/[\w.:@-]+)*$/.test(relative) || relative.split("/").some((part) => part === "." || part === "..")) {
    throw new TypeError(`invalid sysctl key "${key}"`);
  }
  return `/proc/sys/${relative}`;
}

/** The value with its trailing newline removed. */
export function readSysctl(key: string, options: SysctlOptions = {}): string {
  const path = sysctlPath(key);
  const operation = `read sysctl ${key}${where(options)}`;
  return inNetns(options, () => {
    const fd = check(operation, libc.open(cString(path), O_RDONLY | O_CLOEXEC, 0));
    try {
      const chunks: Buffer[] = [];
      const buffer = Buffer.alloc(4096);
      for (;;) {
        const n = check(operation, libc.read(fd, buffer, buffer.byteLength));
        if (n === 0) break;
        chunks.push(Buffer.from(buffer.subarray(0, n)));
      }
      return Buffer.concat(chunks).toString("utf8").replace(/\n$/, "");
    } finally {
      libc.close(fd);
    }
  });
}

export function writeSysctl(key: string, value: string | number, options: SysctlOptions = {}): void {
  const path = sysctlPath(key);
  const operation = `write sysctl ${key}=${value}${where(options)}`;
  const bytes = Buffer.from(String(value), "utf8");
  inNetns(options, () => {
    const fd = check(operation, libc.open(cString(path), O_WRONLY | O_CLOEXEC, 0));
    try {
      // /proc/sys handlers take the whole value in one write.
      const written = check(operation, libc.write(fd, bytes, bytes.byteLength));
      if (written !== bytes.byteLength) throw new Error(`${operation}: short write (${written} of ${bytes.byteLength} bytes)`);
    } finally {
      libc.close(fd);
    }
  });
}

function inNetns<T>(options: SysctlOptions, fn: () => T): T {
  return options.netns ? options.netns.run(fn) : fn();
}

function where(options: SysctlOptions): string {
  return options.netns ? ` in netns ${options.netns.path}` : "";
}
