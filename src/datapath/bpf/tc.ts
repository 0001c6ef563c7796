/**
 * Attaching tc programs to an interface the best way the kernel offers: a tcx link where the
 * kernel has tcx (>= 6.6), a clsact qdisc with a cls_bpf filter otherwise. The two differ in
 * lifetime: a tcx link lives while it is pinned or our descriptor is open; a filter lives until
 * it is removed or the interface goes away.
 */
import { existsSync } from "node:fs";
import { attachClsact, detachClsact, type ClsactFilter } from "./clsact.ts";
import { BpfError } from "./error.ts";
import type { BpfLink } from "./link.ts";
import type { BpfProgram } from "./object.ts";
import { attachTcx, openPinnedTcxLink, tcxSupported, type TcDirection } from "./tcx.ts";

export type TcMode = "tcx" | "clsact";

export interface TcAttachOptions {
  /** "auto" (default) picks tcx when the kernel supports it. */
  mode?: "auto" | TcMode;
  /**
   * tcx: pin the link here so the program stays attached after we exit. If a link is already
   * pinned there (an earlier run), `replace` swaps its program (or, if its interface is gone,
   * drops it and attaches anew); without `replace` that is an error. clsact filters need no pin
   * and ignore this.
   */
  pinPath?: string;
  /** tcx: update the program of the link pinned at pinPath. clsact: replace the filter at handle/priority. */
  replace?: boolean;
  /** clsact only: filter handle and priority (default 1 and 1). */
  handle?: number;
  priority?: number;
}

export interface TcAttachment {
  readonly mode: TcMode;
  readonly ifindex: number;
  readonly direction: TcDirection;
  /** Removes the program from the interface (and a tcx link's pin). Safe to call twice. */
  detach(): void;
  /**
   * Lets go without detaching: a pinned tcx link or a clsact filter stays; an unpinned tcx link
   * goes away with our descriptor.
   */
  close(): void;
}

export class TcxAttachment implements TcAttachment {
  readonly mode = "tcx";
  readonly ifindex: number;
  readonly direction: TcDirection;
  /** The link: pin it, swap its program, read its info. */
  readonly link: BpfLink;

  constructor(link: BpfLink, ifindex: number, direction: TcDirection) {
    this.link = link;
    this.ifindex = ifindex;
    this.direction = direction;
  }

  detach(): void {
    this.link.detach();
  }

  close(): void {
    this.link.close();
  }
}

export class ClsactAttachment implements TcAttachment {
  readonly mode = "clsact";
  readonly filter: ClsactFilter;
  private detached = false;

  constructor(filter: ClsactFilter) {
    this.filter = filter;
  }

  get ifindex(): number {
    return this.filter.ifindex;
  }

  get direction(): TcDirection {
    return this.filter.direction;
  }

  detach(): void {
    if (this.detached) return;
    detachClsact(this.filter);
    this.detached = true;
  }

  close(): void {}
}

const EEXIST = 17;

export function attachTc(
  program: BpfProgram | number,
  ifindex: number,
  direction: TcDirection,
  options: TcAttachOptions = {},
): TcAttachment {
  const mode = options.mode ?? "auto";
  if (mode === "tcx" || (mode === "auto" && tcxSupported())) return attachWithTcx(program, ifindex, direction, options);
  return new ClsactAttachment(attachClsact(program, ifindex, direction, options));
}

function attachWithTcx(
  program: BpfProgram | number,
  ifindex: number,
  direction: TcDirection,
  options: TcAttachOptions,
): TcxAttachment {
  const { pinPath, replace } = options;
  if (pinPath !== undefined && existsSync(pinPath)) {
    if (!replace) {
      throw new BpfError(`attach to tcx ${direction} of ifindex ${ifindex}: a link is already pinned at ${pinPath}`, EEXIST);
    }
    const pinned = openPinnedTcxLink(pinPath, ifindex, direction);
    if (pinned !== null) {
      try {
        pinned.update(program);
      } catch (error) {
        pinned.close();
        throw error;
      }
      return new TcxAttachment(pinned, ifindex, direction);
    }
  }
  const link = attachTcx(program, ifindex, direction);
  if (pinPath !== undefined) {
    try {
      link.pin(pinPath);
    } catch (error) {
      link.close(); // unpinned: closing our only reference detaches it again
      throw error;
    }
  }
  return new TcxAttachment(link, ifindex, direction);
}
