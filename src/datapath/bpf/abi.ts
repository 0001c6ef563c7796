/**
 * C structs we exchange with libbpf 1.1.2 (its opts structs, from /usr/include/bpf) and the
 * kernel (bpf_obj_get_info_by_fd results, from linux/bpf.h), described with our codecs so their
 * layout follows the C alignment rules. Field names are the C names; `size_t` and pointers are
 * u64 (x86-64), unnamed bit-fields are pad(). tests/integration/bpf-abi.test.ts compares every
 * offset and size here with what the C compiler computes from the headers.
 *
 * libbpf's opts structs start with `sz`, their own size: libbpf rejects an opts struct whose
 * unknown tail is non-zero, and reads only the fields that fit in `sz`.
 */
import { array, bytes, i32, pad, struct, u32, u64, u8 } from "./codec.ts";

export const bpf_object_open_opts = struct({
  sz: u64,
  object_name: u64,
  relaxed_maps: u8,
  pin_root_path: u64,
  attach_prog_fd_removed: pad(4),
  kconfig: u64,
  btf_custom_path: u64,
  kernel_log_buf: u64,
  kernel_log_size: u64,
  kernel_log_level: u32,
});

export const bpf_test_run_opts = struct({
  sz: u64,
  data_in: u64,
  data_out: u64,
  data_size_in: u32,
  data_size_out: u32,
  ctx_in: u64,
  ctx_out: u64,
  ctx_size_in: u32,
  ctx_size_out: u32,
  retval: u32,
  repeat: i32,
  duration: u32,
  flags: u32,
  cpu: u32,
  batch_size: u32,
});

export const bpf_link_create_opts = struct({
  sz: u64,
  flags: u32,
  iter_info: u64,
  iter_info_len: u32,
  target_btf_id: u32,
  /** The largest member of the per-attach-type union; we never set it. */
  kprobe_multi: array(u64, 4),
});

export const bpf_link_update_opts = struct({
  sz: u64,
  flags: u32,
  old_prog_fd: u32,
});

export const bpf_tc_hook = struct({
  sz: u64,
  ifindex: i32,
  attach_point: u32,
  parent: u32,
});

export const bpf_tc_opts = struct({
  sz: u64,
  prog_fd: i32,
  flags: u32,
  prog_id: u32,
  handle: u32,
  priority: u32,
});

export const bpf_map_batch_opts = struct({
  sz: u64,
  elem_flags: u64,
  flags: u64,
});

export const bpf_prog_query_opts = struct({
  sz: u64,
  query_flags: u32,
  attach_flags: u32,
  prog_ids: u64,
  prog_cnt: u32,
  prog_attach_flags: u64,
});

export const bpf_map_info = struct({
  type: u32,
  id: u32,
  key_size: u32,
  value_size: u32,
  max_entries: u32,
  map_flags: u32,
  name: bytes(16),
  ifindex: u32,
  btf_vmlinux_value_type_id: u32,
  netns_dev: u64,
  netns_ino: u64,
  btf_id: u32,
  btf_key_type_id: u32,
  btf_value_type_id: u32,
  unnamed_pad: pad(4),
  map_extra: u64,
});

/** The leading part of struct bpf_prog_info: the kernel fills only as much as we ask for. */
export const bpf_prog_info = struct({
  type: u32,
  id: u32,
  tag: bytes(8),
  jited_prog_len: u32,
  xlated_prog_len: u32,
  jited_prog_insns: u64,
  xlated_prog_insns: u64,
  load_time: u64,
  created_by_uid: u32,
  nr_map_ids: u32,
  map_ids: u64,
  name: bytes(16),
});

/**
 * The leading part of struct bpf_link_info with the union's tcx member (kernel >= 6.6); the
 * union holds u64 members, so it starts 8-aligned.
 */
export const bpf_link_info = struct({
  type: u32,
  id: u32,
  prog_id: u32,
  union_align: pad(4),
  tcx: struct({ ifindex: u32, attach_type: u32 }),
});

/** A kernel object name (char name[BPF_OBJ_NAME_LEN]) without its NUL padding. */
export function objectName(name: Uint8Array): string {
  const end = name.indexOf(0);
  return new TextDecoder().decode(end < 0 ? name : name.subarray(0, end));
}
