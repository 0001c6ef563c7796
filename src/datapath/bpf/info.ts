/**
 * What the kernel says about a map, program or link behind a file descriptor
 * (BPF_OBJ_GET_INFO_BY_FD), and libbpf's names for the kernel's type numbers.
 */
import { bpf_link_info, bpf_map_info, bpf_prog_info, objectName } from "./abi.ts";
import type { Codec } from "./codec.ts";
import { check } from "./error.ts";
import { libbpf, readCString } from "./libbpf.ts";

export interface MapInfo {
  id: number;
  name: string;
  /** libbpf's name of the map type: "hash", "percpu_array", "lpm_trie", "ringbuf", ... */
  type: string;
  typeId: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface ProgramInfo {
  id: number;
  name: string;
  /** libbpf's name of the program type: "sched_cls", "cgroup_skb", ... */
  type: string;
  typeId: number;
}

export interface LinkInfo {
  id: number;
  /** The kernel's enum bpf_link_type (BPF_LINK_TYPE_TCX is 11). */
  typeId: number;
  programId: number;
  /** Meaningful for tcx links only. */
  tcx: { ifindex: number; attachType: number };
}

function objectInfo<T>(what: string, fd: number, codec: Codec<T>): T {
  const info = new Uint8Array(codec.size);
  const length = new Uint32Array([info.length]);
  check(`get info of ${what} fd ${fd}`, () => libbpf().bpf_obj_get_info_by_fd(fd, info, length));
  return codec.decode(info);
}

export function mapInfo(fd: number): MapInfo {
  const info = objectInfo("map", fd, bpf_map_info);
  return {
    id: info.id,
    name: objectName(info.name),
    type: mapTypeName(info.type),
    typeId: info.type,
    keySize: info.key_size,
    valueSize: info.value_size,
    maxEntries: info.max_entries,
    flags: info.map_flags,
  };
}

export function programInfo(fd: number): ProgramInfo {
  const info = objectInfo("program", fd, bpf_prog_info);
  return { id: info.id, name: objectName(info.name), type: programTypeName(info.type), typeId: info.type };
}

export function linkInfo(fd: number): LinkInfo {
  const info = objectInfo("link", fd, bpf_link_info);
  return {
    id: info.id,
    typeId: info.type,
    programId: info.prog_id,
    tcx: { ifindex: info.tcx.ifindex, attachType: info.tcx.attach_type },
  };
}

export function mapTypeName(type: number): string {
  return readCString(libbpf().libbpf_bpf_map_type_str(type)) ?? `unknown(${type})`;
}

export function programTypeName(type: number): string {
  return readCString(libbpf().libbpf_bpf_prog_type_str(type)) ?? `unknown(${type})`;
}
