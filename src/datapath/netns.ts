/**
 * Network namespaces: handles (open file descriptors on nsfs), named namespaces as iproute2
 * keeps them (bind mounts under /var/run/netns, so `ip netns` sees ours and we see its), and
 * running code inside one.
 *
 * setns(2) moves only the calling thread. bun:ffi calls and synchronous fs calls run on the JS
 * thread, so a synchronous function run inside a namespace opens its sockets and /proc/sys files
 * there; nothing else can run on this thread until it returns, and we always switch back.
 */
import { mkdirSync } from "node:fs";
import { SyscallError } from "./errors.ts";
import {
  check,
  CLONE_NEWNET,
  cString,
  EEXIST,
  EINVAL,
  ENOENT,
  errno,
  libc,
  MNT_DETACH,
  MS_BIND,
  MS_REC,
  MS_SHARED,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
} from "./libc.ts";

/** Where iproute2 keeps named namespaces (NETNS_RUN_DIR). */
export const NETNS_RUN_DIR = "/var/run/netns";

export class Netns {
  private closed = false;

  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  /** A handle on a namespace file: /var/run/netns/NAME, /proc/PID/ns/net, ... */
  static open(path: string): Netns {
    return new Netns(check(`open netns ${path}`, libc.open(cString(path), O_RDONLY | O_CLOEXEC, 0)), path);
  }

  static fromPid(pid: number): Netns {
    return Netns.open(`/proc/${pid}/ns/net`);
  }

  /** This thread's namespace (not necessarily the process's: see run). */
  static current(): Netns {
    return Netns.open("/proc/thread-self/ns/net");
  }

  /** The path of a named namespace; the name must be a plain file name. */
  static pathOf(name: string): string {
    if (!name || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new TypeError(`invalid netns name "${name}"`);
    }
    return `${NETNS_RUN_DIR}/${name}`;
  }

  /** A new named namespace, as `ip netns add NAME`; fails with EEXIST when the name is taken. */
  static create(name: string): Netns {
    const operation = `create netns ${name}`;
    const path = Netns.pathOf(name);
    mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
    makeRunDirShared();
    const created = libc.open(cString(path), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (created < 0) {
      const code = errno();
      throw new SyscallError(operation, code, code === EEXIST ? `${path} already exists` : path);
    }
    libc.close(created);
    try {
      const home = Netns.current();
      try {
        // unshare gives this thread a fresh namespace; the bind mount keeps it alive after we
        // switch back, exactly as iproute2 does (with thread-self: only this thread moved).
        check(`${operation}: unshare`, libc.unshare(CLONE_NEWNET));
        try {
          check(
            `${operation}: bind mount`,
            libc.mount(cString("/proc/thread-self/ns/net"), cString(path), cString("none"), MS_BIND, null),
          );
        } finally {
          returnTo(home);
        }
      } finally {
        home.close();
      }
    } catch (error) {
      libc.unlink(cString(path));
      throw error;
    }
    return Netns.open(path);
  }

  /**
   * Removes a named namespace, as `ip netns del NAME`: detach the bind mount, delete the file.
   * The namespace itself lives on while a process or handle still holds it.
   */
  static remove(name: string, options: { missingOk?: boolean } = {}): void {
    const operation = `remove netns ${name}`;
    const path = Netns.pathOf(name);
    if (libc.umount2(cString(path), MNT_DETACH) < 0) {
      const code = errno();
      // EINVAL: not a mount point, e.g. the file left by an interrupted create; still unlink it.
      if (code === ENOENT && options.missingOk) return;
      if (code !== EINVAL) throw new SyscallError(operation, code, path);
    }
    if (libc.unlink(cString(path)) < 0) {
      const code = errno();
      if (code !== ENOENT || !options.missingOk) throw new SyscallError(operation, code, path);
    }
  }

  /**
   * Runs `fn` with this thread inside the namespace and switches back afterwards, also when it
   * throws. `fn` must be synchronous: after an await, the continuation would run after the
   * switch back (in the wrong namespace), interleaved with unrelated code.
   */
  run<T>(fn: () => T): T {
    this.assertOpen("run in");
    const home = Netns.current();
    try {
      check(`enter netns ${this.path}`, libc.setns(this.fd, CLONE_NEWNET));
      let result: T;
      try {
        result = fn();
      } finally {
        returnTo(home);
      }
      if (isThenable(result)) {
        // Keep the abandoned promise from also surfacing as an unhandled rejection.
        Promise.resolve(result).catch(() => {});
        throw new TypeError(
          `Netns.run(${this.path}): the function returned a promise; it must be synchronous, because ` +
            "setns applies to the thread and code after an await would run outside the namespace",
        );
      }
      return result;
    } finally {
      home.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  private assertOpen(action: string): void {
    if (this.closed) throw new Error(`${action} netns ${this.path}: the handle is closed`);
  }
}

/**
 * Switches the thread back to `home`. If that fails, every later socket, route or sysctl call
 * on this thread would silently act on the wrong namespace; stopping the process is safer.
 */
function returnTo(home: Netns): void {
  if (libc.setns(home.fd, CLONE_NEWNET) === 0) return;
  const error = new SyscallError(`return to netns ${home.path}`, errno());
  process.stderr.write(`fatal: ${error.message}; aborting rather than running in a foreign network namespace\n`);
  process.abort();
}

/** Makes NETNS_RUN_DIR a shared mount (bind-mounting it onto itself first if needed), as iproute2 does. */
function makeRunDirShared(): void {
  const dir = cString(NETNS_RUN_DIR);
  let boundOntoItself = false;
  // Shared propagation lets the namespace mounts reach (and their removal unmount in) other mount
  // namespaces, so a deleted namespace is not kept alive by a stale copy of its mount.
  while (libc.mount(cString(""), dir, cString("none"), MS_SHARED | MS_REC, null) < 0) {
    const code = errno();
    if (code !== EINVAL || boundOntoItself) throw new SyscallError(`make ${NETNS_RUN_DIR} a shared mount`, code);
    check(`bind-mount ${NETNS_RUN_DIR} onto itself`, libc.mount(dir, dir, cString("none"), MS_BIND | MS_REC, null));
    boundOntoItself = true;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
