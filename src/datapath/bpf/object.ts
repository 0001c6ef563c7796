/**
 * A BPF ELF object (clang's output) opened and loaded by libbpf: its maps are created (or reused
 * from bpffs pins) and its programs verified and loaded into the kernel. Maps can be resized and
 * given pin paths between open and load; after load they and the programs have descriptors.
 */
import type { Pointer } from "bun:ffi";
import { cString } from "../libc.ts";
import { bpf_object_open_opts } from "./abi.ts";
import { BpfError, check, checkPointer } from "./error.ts";
import { mapTypeName, programTypeName } from "./info.ts";
import { libbpf, readCString } from "./libbpf.ts";
import { address, holding } from "./memory.ts";

export interface BpfObjectOptions {
  /** Names the object in errors and in libbpf's log (an object from memory has no file name). */
  name: string;
  /** Where maps declared with `__uint(pinning, LIBBPF_PIN_BY_NAME)` are pinned and reused (default /sys/fs/bpf). */
  pinRoot?: string;
}

const EBADF = 9;
const ENOENT = 2;

export class BpfObject {
  readonly name: string;
  private pointer: Pointer | null;
  /** libbpf parses the ELF in place and keeps pointing into it until load; so do we. */
  private elf: Uint8Array | null;
  private readonly mapsByName = new Map<string, BpfMapHandle>();
  private readonly programsByName = new Map<string, BpfProgram>();

  private constructor(name: string, pointer: Pointer, elf: Uint8Array) {
    this.name = name;
    this.pointer = pointer;
    this.elf = elf;
    const lib = libbpf();
    for (let map = lib.bpf_object__next_map(pointer, null); map !== null; map = lib.bpf_object__next_map(pointer, map)) {
      const handle = new BpfMapHandle(this, map);
      this.mapsByName.set(handle.name, handle);
    }
    for (
      let program = lib.bpf_object__next_program(pointer, null);
      program !== null;
      program = lib.bpf_object__next_program(pointer, program)
    ) {
      const handle = new BpfProgram(this, program);
      this.programsByName.set(handle.name, handle);
    }
  }

  /** Parses an ELF object (maps and programs are not created until load). */
  static open(bytes: Uint8Array, options: BpfObjectOptions): BpfObject {
    const elf = new Uint8Array(bytes);
    const name = cString(options.name);
    const pinRoot = options.pinRoot === undefined ? null : cString(options.pinRoot);
    const opts = bpf_object_open_opts.encode({
      sz: BigInt(bpf_object_open_opts.size),
      object_name: address(name),
      relaxed_maps: 0,
      pin_root_path: address(pinRoot),
      kconfig: 0n,
      btf_custom_path: 0n,
      kernel_log_buf: 0n,
      kernel_log_size: 0n,
      kernel_log_level: 0,
    });
    const pointer = holding([name, pinRoot], () =>
      checkPointer(`open bpf object "${options.name}"`, () => libbpf().bpf_object__open_mem(elf, elf.length, opts)),
    );
    return new BpfObject(options.name, pointer, elf);
  }

  /** Creates the maps (reusing compatible pinned ones) and loads the programs. */
  load(): void {
    const pointer = this.native();
    holding([this.elf], () => check(`load bpf object "${this.name}"`, () => libbpf().bpf_object__load(pointer)));
    this.elf = null;
  }

  map(name: string): BpfMapHandle {
    const map = this.mapsByName.get(name);
    if (!map) throw new BpfError(`find map "${name}" in bpf object "${this.name}"`, ENOENT);
    return map;
  }

  program(name: string): BpfProgram {
    const program = this.programsByName.get(name);
    if (!program) throw new BpfError(`find program "${name}" in bpf object "${this.name}"`, ENOENT);
    return program;
  }

  maps(): BpfMapHandle[] {
    return [...this.mapsByName.values()];
  }

  programs(): BpfProgram[] {
    return [...this.programsByName.values()];
  }

  /**
   * Closes the maps' and programs' descriptors. Pinned maps and links, and tc filters, keep
   * their programs and maps alive in the kernel. Safe to call twice.
   */
  close(): void {
    if (this.pointer === null) return;
    libbpf().bpf_object__close(this.pointer);
    this.pointer = null;
    this.elf = null;
  }

  get closed(): boolean {
    return this.pointer === null;
  }

  /** The struct bpf_object *, for handles; throws once closed so no one touches freed memory. */
  native(): Pointer {
    if (this.pointer === null) throw new BpfError(`use bpf object "${this.name}"`, EBADF);
    return this.pointer;
  }
}

/** A map of a BpfObject (struct bpf_map *): configurable before load, has an fd after it. */
export class BpfMapHandle {
  readonly object: BpfObject;
  readonly name: string;
  private readonly pointer: Pointer;
  private loadedFd: number | null = null;

  constructor(object: BpfObject, pointer: Pointer) {
    this.object = object;
    this.pointer = pointer;
    this.name = readCString(libbpf().bpf_map__name(pointer)) ?? "";
  }

  private native(): Pointer {
    this.object.native();
    return this.pointer;
  }

  private get what(): string {
    return `map "${this.name}" of bpf object "${this.object.name}"`;
  }

  /** Valid while the object is open (BpfMap reads it on every operation, hence the cache). */
  get fd(): number {
    const map = this.native();
    this.loadedFd ??= check(`get fd of ${this.what} (is the object loaded?)`, () => libbpf().bpf_map__fd(map));
    return this.loadedFd;
  }

  get type(): string {
    return mapTypeName(libbpf().bpf_map__type(this.native()));
  }

  get keySize(): number {
    return libbpf().bpf_map__key_size(this.native());
  }

  get valueSize(): number {
    return libbpf().bpf_map__value_size(this.native());
  }

  get maxEntries(): number {
    return libbpf().bpf_map__max_entries(this.native());
  }

  /** Before load: overrides the max_entries the C code declared. */
  setMaxEntries(maxEntries: number): this {
    const map = this.native();
    check(`set max entries of ${this.what} to ${maxEntries}`, () => libbpf().bpf_map__set_max_entries(map, maxEntries));
    return this;
  }

  /**
   * Before load: pin the map at `path`. If a compatible map is already pinned there, load reuses
   * it (and its contents); an incompatible one makes load fail.
   */
  setPinPath(path: string): this {
    const map = this.native();
    check(`set pin path of ${this.what} to ${path}`, () => libbpf().bpf_map__set_pin_path(map, cString(path)));
    return this;
  }

  get pinPath(): string | null {
    return readCString(libbpf().bpf_map__pin_path(this.native()));
  }
}

/** A program of a BpfObject (struct bpf_program *): has an fd after load. */
export class BpfProgram {
  readonly object: BpfObject;
  readonly name: string;
  /** The ELF section it came from, which tells libbpf its type: "tc", "cgroup_skb/egress", ... */
  readonly sectionName: string;
  private readonly pointer: Pointer;
  private loadedFd: number | null = null;

  constructor(object: BpfObject, pointer: Pointer) {
    this.object = object;
    this.pointer = pointer;
    this.name = readCString(libbpf().bpf_program__name(pointer)) ?? "";
    this.sectionName = readCString(libbpf().bpf_program__section_name(pointer)) ?? "";
  }

  /** Valid while the object is open. */
  get fd(): number {
    this.object.native();
    const what = `program "${this.name}" of bpf object "${this.object.name}"`;
    this.loadedFd ??= check(`get fd of ${what} (is the object loaded?)`, () => libbpf().bpf_program__fd(this.pointer));
    return this.loadedFd;
  }

  get type(): string {
    this.object.native();
    return programTypeName(libbpf().bpf_program__type(this.pointer));
  }
}

/** APIs taking a program accept a BpfProgram or a bare program fd (e.g. from a pinned program). */
export function programFd(program: BpfProgram | number): number {
  return typeof program === "number" ? program : program.fd;
}

/** A program as errors name it: `"cil_from_container"`, or `fd 12`. */
export function programLabel(program: BpfProgram | number): string {
  return typeof program === "number" ? `fd ${program}` : `"${program.name}"`;
}
