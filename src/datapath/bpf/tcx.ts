/**
 * tcx (kernel >= 6.6): tc programs attached to an interface's ingress or egress through a BPF
 * link, with no qdisc or filter. libbpf 1.1.2 predates tcx, so we pass the kernel's attach type
 * numbers to bpf_link_create and bpf_prog_query ourselves.
 */
import { bpf_prog_query_opts } from "./abi.ts";
import { BpfError, check } from "./error.ts";
import { programInfo } from "./info.ts";
import { BpfLink, createLink } from "./link.ts";
import { libbpf } from "./libbpf.ts";
import { address, holding } from "./memory.ts";
import type { BpfProgram } from "./object.ts";
import { libc } from "../libc.ts";

export type TcDirection = "ingress" | "egress";

/** enum bpf_attach_type: BPF_TCX_INGRESS, BPF_TCX_EGRESS. */
const tcxAttachTypes: Record<TcDirection, number> = { ingress: 46, egress: 47 };
/** enum bpf_link_type: BPF_LINK_TYPE_TCX. */
const BPF_LINK_TYPE_TCX = 11;
const EINVAL = 22;
const LOOPBACK_IFINDEX = 1;

let tcxSupport: boolean | null = null;

/**
 * Whether the kernel knows the tcx attach types: a query of the loopback's tcx ingress hook
 * (present in every namespace) succeeds on kernels with tcx and fails with EINVAL before.
 */
export function tcxSupported(): boolean {
  if (tcxSupport === null) {
    try {
      queryTcx(LOOPBACK_IFINDEX, "ingress");
      tcxSupport = true;
    } catch (error) {
      if (!(error instanceof BpfError && error.errno === EINVAL)) throw error;
      tcxSupport = false;
    }
  }
  return tcxSupport;
}

function describe(ifindex: number, direction: TcDirection): string {
  return `tcx ${direction} of ifindex ${ifindex}`;
}

/** Attaches `program` behind the programs already on the hook; the link holds it there. */
export function attachTcx(program: BpfProgram | number, ifindex: number, direction: TcDirection): BpfLink {
  return createLink(program, ifindex, tcxAttachTypes[direction], describe(ifindex, direction));
}

/**
 * Opens a pinned tcx link and checks it is attached where the caller expects. A link whose
 * interface has been deleted does nothing any more: it is dropped with its pin, and null returned.
 */
export function openPinnedTcxLink(path: string, ifindex: number, direction: TcDirection): BpfLink | null {
  const link = BpfLink.openPinned(path, describe(ifindex, direction));
  const info = link.info();
  const isTcx = info.typeId === BPF_LINK_TYPE_TCX;
  if (isTcx && info.tcx.ifindex === 0) {
    link.detach();
    return null;
  }
  if (!isTcx || info.tcx.ifindex !== ifindex || info.tcx.attachType !== tcxAttachTypes[direction]) {
    link.close();
    const where = isTcx
      ? describe(info.tcx.ifindex, info.tcx.attachType === tcxAttachTypes.ingress ? "ingress" : "egress")
      : `a hook of link type ${info.typeId}`;
    const operation = `reuse link pinned at ${path} for ${describe(ifindex, direction)}`;
    throw new BpfError(`${operation}: it is attached to ${where}`, EINVAL);
  }
  return link;
}

export interface TcxProgram {
  id: number;
  name: string;
}

/** Programs attached to a tcx hook, in the order they run. */
export function listTcx(ifindex: number, direction: TcDirection): TcxProgram[] {
  return queryTcx(ifindex, direction).map((id) => {
    const fd = libbpf().bpf_prog_get_fd_by_id(id);
    if (fd < 0) return { id, name: "" }; // detached meanwhile
    try {
      return { id, name: programInfo(fd).name };
    } finally {
      libc.close(fd);
    }
  });
}

/** Largest number of programs we expect on one hook; more are reported as E2BIG by the kernel. */
const maxQueriedPrograms = 64;

function queryTcx(ifindex: number, direction: TcDirection): number[] {
  const ids = new Uint32Array(maxQueriedPrograms);
  const idBytes = new Uint8Array(ids.buffer);
  const opts = bpf_prog_query_opts.encode({
    sz: BigInt(bpf_prog_query_opts.size),
    query_flags: 0,
    attach_flags: 0,
    prog_ids: address(idBytes),
    prog_cnt: ids.length,
    prog_attach_flags: 0n,
  });
  const attachType = tcxAttachTypes[direction];
  holding([idBytes], () =>
    check(`query ${describe(ifindex, direction)}`, () => libbpf().bpf_prog_query_opts(ifindex, attachType, opts)),
  );
  return [...ids.subarray(0, bpf_prog_query_opts.decode(opts).prog_cnt)];
}
