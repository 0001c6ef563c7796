/**
 * The embedded libbpf (build/libbpf/libbpf-embed.so: libbpf 1.1.2 with libelf and zlib, needing
 * only libc), opened on first use so commands that never touch BPF (the CNI plugin) do not pay
 * for it. Inside a `bun build --compile` executable the shared object lives in Bun's embedded
 * file system, which dlopen cannot read: it is extracted once to a private directory.
 */
import { CString, dlopen, type Pointer } from "bun:ffi";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import soPath from "../../../build/libbpf/libbpf-embed.so" with { type: "file" };
import { printCallback } from "./log.ts";

const symbols = {
  libbpf_set_print: { args: ["ptr"], returns: "ptr" },
  libbpf_num_possible_cpus: { args: [], returns: "i32" },
  libbpf_bpf_map_type_str: { args: ["u32"], returns: "ptr" },
  libbpf_bpf_prog_type_str: { args: ["u32"], returns: "ptr" },

  bpf_object__open_mem: { args: ["ptr", "usize", "ptr"], returns: "ptr" },
  bpf_object__load: { args: ["ptr"], returns: "i32" },
  bpf_object__close: { args: ["ptr"], returns: "void" },
  bpf_object__next_map: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_object__next_program: { args: ["ptr", "ptr"], returns: "ptr" },

  bpf_map__name: { args: ["ptr"], returns: "ptr" },
  bpf_map__fd: { args: ["ptr"], returns: "i32" },
  bpf_map__type: { args: ["ptr"], returns: "u32" },
  bpf_map__key_size: { args: ["ptr"], returns: "u32" },
  bpf_map__value_size: { args: ["ptr"], returns: "u32" },
  bpf_map__max_entries: { args: ["ptr"], returns: "u32" },
  bpf_map__set_max_entries: { args: ["ptr", "u32"], returns: "i32" },
  bpf_map__set_pin_path: { args: ["ptr", "ptr"], returns: "i32" },
  bpf_map__pin_path: { args: ["ptr"], returns: "ptr" },

  bpf_program__name: { args: ["ptr"], returns: "ptr" },
  bpf_program__section_name: { args: ["ptr"], returns: "ptr" },
  bpf_program__fd: { args: ["ptr"], returns: "i32" },
  bpf_program__type: { args: ["ptr"], returns: "u32" },

  bpf_map_lookup_elem: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_map_update_elem: { args: ["i32", "ptr", "ptr", "u64"], returns: "i32" },
  bpf_map_delete_elem: { args: ["i32", "ptr"], returns: "i32" },
  bpf_map_get_next_key: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_map_lookup_batch: { args: ["i32", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  bpf_map_update_batch: { args: ["i32", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },

  bpf_obj_pin: { args: ["i32", "ptr"], returns: "i32" },
  bpf_obj_get: { args: ["ptr"], returns: "i32" },
  bpf_obj_get_info_by_fd: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_prog_get_fd_by_id: { args: ["u32"], returns: "i32" },
  bpf_prog_query_opts: { args: ["i32", "u32", "ptr"], returns: "i32" },
  bpf_prog_test_run_opts: { args: ["i32", "ptr"], returns: "i32" },

  bpf_link_create: { args: ["i32", "i32", "u32", "ptr"], returns: "i32" },
  bpf_link_update: { args: ["i32", "i32", "ptr"], returns: "i32" },
  bpf_link_detach: { args: ["i32"], returns: "i32" },

  bpf_tc_hook_create: { args: ["ptr"], returns: "i32" },
  bpf_tc_attach: { args: ["ptr", "ptr"], returns: "i32" },
  bpf_tc_detach: { args: ["ptr", "ptr"], returns: "i32" },

  ring_buffer__new: { args: ["i32", "ptr", "ptr", "ptr"], returns: "ptr" },
  ring_buffer__consume: { args: ["ptr"], returns: "i32" },
  ring_buffer__free: { args: ["ptr"], returns: "void" },
} as const;

type Opened = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
/** bun's typings allow a bigint for a returned pointer; at run time it is a number or null. */
type Symbols = {
  [K in keyof Opened]: Opened[K] extends (...args: infer A) => infer R ? (...args: A) => Exclude<R, bigint> : never;
};

let library: Symbols | null = null;

/** libbpf's functions, loading the library (and routing its log) on first use. */
export function libbpf(): Symbols {
  if (!library) {
    const opened = dlopen(loadablePath(), symbols).symbols as Symbols;
    opened.libbpf_set_print(printCallback());
    library = opened;
  }
  return library;
}

/** A `const char *` returned by libbpf, or null for NULL. */
export function readCString(pointer: Pointer | null): string | null {
  return pointer === null ? null : new CString(pointer).toString();
}

function isEmbedded(path: string): boolean {
  return path.startsWith("/$bunfs") || path.startsWith("B:/~BUN");
}

function loadablePath(): string {
  return isEmbedded(soPath) ? extract(readFileSync(soPath)) : soPath;
}

/**
 * Writes the embedded library to a real file named by its content hash, in a directory only our
 * user can write, so an existing file of that name is ours and complete (written, then renamed).
 */
function extract(content: Buffer): string {
  const hash = createHash("sha256").update(content).digest("hex").slice(0, 16);
  const directory = privateDirectory();
  const target = join(directory, `libbpf-embed-${hash}.so`);
  if (existsSync(target) && statSync(target).size === content.length) return target;
  const temporary = join(directory, `.libbpf-embed-${hash}.${process.pid}.tmp`);
  writeFileSync(temporary, content, { mode: 0o500 });
  renameSync(temporary, target);
  return target;
}

function privateDirectory(): string {
  const uid = process.getuid?.() ?? 0;
  const directory = join(process.env.XDG_RUNTIME_DIR || tmpdir(), `cilium-bun-${uid}`);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  // A shared parent like /tmp lets anyone create this name first: trust it only if it is ours.
  const stat = lstatSync(directory);
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) {
    throw new Error(`refusing to extract libbpf into ${directory}: not a private directory of uid ${uid}`);
  }
  return directory;
}
