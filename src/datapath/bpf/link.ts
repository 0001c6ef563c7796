/**
 * BPF links: kernel objects that keep a program attached to a hook (a tcx hook of an interface,
 * a cgroup) for as long as someone holds them: our descriptor, or a pin on bpffs, which is how
 * the datapath survives an agent restart. A link's program can be swapped atomically.
 */
import { unlinkSync } from "node:fs";
import { bpf_link_update_opts } from "./abi.ts";
import { BpfError, check } from "./error.ts";
import { linkInfo, type LinkInfo } from "./info.ts";
import { libbpf } from "./libbpf.ts";
import { programFd, programLabel, type BpfProgram } from "./object.ts";
import { cString, libc } from "../libc.ts";

const EBADF = 9;
/** BPF_F_REPLACE: update only if the link still runs the expected program. */
const BPF_F_REPLACE = 1 << 2;

export class BpfLink {
  /** What the link attaches, for messages: `tcx ingress of ifindex 7`. */
  readonly description: string;
  private linkFd: number | null;
  private pinPath: string | null;

  constructor(fd: number, description: string, pinPath: string | null = null) {
    this.linkFd = fd;
    this.description = description;
    this.pinPath = pinPath;
  }

  /** Opens a link pinned on bpffs (e.g. by a previous run of the agent). */
  static openPinned(path: string, description = `link pinned at ${path}`): BpfLink {
    const fd = check(`open pinned link ${path}`, () => libbpf().bpf_obj_get(cString(path)));
    return new BpfLink(fd, description, path);
  }

  get fd(): number {
    if (this.linkFd === null) throw new BpfError(`use ${this.description}`, EBADF);
    return this.linkFd;
  }

  get pinnedAt(): string | null {
    return this.pinPath;
  }

  /** Pins the link so it, and the attachment, outlive our descriptor and process. */
  pin(path: string): void {
    const fd = this.fd;
    check(`pin ${this.description} at ${path}`, () => libbpf().bpf_obj_pin(fd, cString(path)));
    this.pinPath = path;
  }

  info(): LinkInfo {
    return linkInfo(this.fd);
  }

  /**
   * Atomically makes the link run `program` instead. With `expected`, only if the link still
   * runs that program (so two updaters cannot silently overwrite each other).
   */
  update(program: BpfProgram | number, expected?: BpfProgram | number): void {
    const fd = this.fd;
    const newFd = programFd(program);
    const opts = bpf_link_update_opts.encode({
      sz: BigInt(bpf_link_update_opts.size),
      flags: expected === undefined ? 0 : BPF_F_REPLACE,
      old_prog_fd: expected === undefined ? 0 : programFd(expected),
    });
    check(`update program of ${this.description}`, () => libbpf().bpf_link_update(fd, newFd, opts));
  }

  /**
   * Detaches the program now, whoever else holds the link, removes our pin and closes the
   * descriptor. Safe to call twice.
   */
  detach(): void {
    if (this.linkFd === null) return;
    const fd = this.linkFd;
    check(`detach ${this.description}`, () => libbpf().bpf_link_detach(fd));
    if (this.pinPath !== null) {
      try {
        unlinkSync(this.pinPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
      this.pinPath = null;
    }
    this.close();
  }

  /**
   * Releases our descriptor only. A pinned link stays attached; an unpinned one is destroyed by
   * the kernel with its last reference, which detaches it. Safe to call twice.
   */
  close(): void {
    if (this.linkFd === null) return;
    libc.close(this.linkFd);
    this.linkFd = null;
  }
}

/** Attaches `program` to `target` (an ifindex, a cgroup fd) with a new link, described by `what`. */
export function createLink(program: BpfProgram | number, target: number, attachType: number, what: string): BpfLink {
  const fd = programFd(program);
  const operation = `attach program ${programLabel(program)} to ${what}`;
  return new BpfLink(check(operation, () => libbpf().bpf_link_create(fd, target, attachType, null)), what);
}
