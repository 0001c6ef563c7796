/**
 * The pre-tcx way to run tc programs: a clsact qdisc on the interface and a direct-action
 * cls_bpf filter under its ingress or egress hook, identified by handle and priority. libbpf
 * speaks the netlink for us. Filters outlive the process without any pinning.
 */
import { bpf_tc_hook, bpf_tc_opts } from "./abi.ts";
import { check } from "./error.ts";
import { libbpf } from "./libbpf.ts";
import { programFd, programLabel, type BpfProgram } from "./object.ts";
import type { TcDirection } from "./tcx.ts";

/** enum bpf_tc_attach_point. */
const attachPoints: Record<TcDirection, number> = { ingress: 1 << 0, egress: 1 << 1 };
/** BPF_TC_F_REPLACE: overwrite the filter with the same handle and priority. */
const BPF_TC_F_REPLACE = 1 << 0;
const EEXIST = 17;
const ENOENT = 2;

export interface ClsactFilter {
  ifindex: number;
  direction: TcDirection;
  handle: number;
  priority: number;
}

export interface ClsactOptions {
  /** Filter handle and priority; one program per hook is ours at (1, 1) unless told otherwise. */
  handle?: number;
  priority?: number;
  /** Replace a filter already at this handle and priority instead of failing with EEXIST. */
  replace?: boolean;
}

function hook(ifindex: number, direction: TcDirection): Uint8Array {
  return bpf_tc_hook.encode({ sz: BigInt(bpf_tc_hook.size), ifindex, attach_point: attachPoints[direction], parent: 0 });
}

function describe(filter: Omit<ClsactFilter, "handle" | "priority">): string {
  return `clsact ${filter.direction} of ifindex ${filter.ifindex}`;
}

/** Creates the clsact qdisc if the interface has none yet (an existing one is fine). */
function ensureClsact(ifindex: number, direction: TcDirection): void {
  const hookBytes = hook(ifindex, direction);
  check(`create clsact qdisc on ifindex ${ifindex}`, () => libbpf().bpf_tc_hook_create(hookBytes), [EEXIST]);
}

export function attachClsact(
  program: BpfProgram | number,
  ifindex: number,
  direction: TcDirection,
  options: ClsactOptions = {},
): ClsactFilter {
  ensureClsact(ifindex, direction);
  const opts = bpf_tc_opts.encode({
    sz: BigInt(bpf_tc_opts.size),
    prog_fd: programFd(program),
    flags: options.replace ? BPF_TC_F_REPLACE : 0,
    prog_id: 0,
    handle: options.handle ?? 1,
    priority: options.priority ?? 1,
  });
  const hookBytes = hook(ifindex, direction);
  const operation = `attach program ${programLabel(program)} to ${describe({ ifindex, direction })}`;
  check(operation, () => libbpf().bpf_tc_attach(hookBytes, opts));
  const attached = bpf_tc_opts.decode(opts);
  return { ifindex, direction, handle: attached.handle, priority: attached.priority };
}

/** Removes the filter; false if it was already gone. */
export function detachClsact(filter: ClsactFilter): boolean {
  const opts = bpf_tc_opts.encode({
    sz: BigInt(bpf_tc_opts.size),
    prog_fd: 0,
    flags: 0,
    prog_id: 0,
    handle: filter.handle,
    priority: filter.priority,
  });
  const hookBytes = hook(filter.ifindex, filter.direction);
  const ret = check(
    `detach filter ${filter.handle}:${filter.priority} from ${describe(filter)}`,
    () => libbpf().bpf_tc_detach(hookBytes, opts),
    [ENOENT],
  );
  return ret >= 0;
}
