/**
 * Typed access to a BPF map from user space: keys and values go through codecs whose sizes are
 * checked against what the kernel says about the map, so a layout drift between the C structs
 * and their TypeScript description fails at open instead of corrupting entries.
 */
import { bpf_map_batch_opts } from "./abi.ts";
import { BpfError, check, ENOTSUPP } from "./error.ts";
import { mapInfo, type MapInfo } from "./info.ts";
import { libbpf } from "./libbpf.ts";
import type { BpfMapHandle } from "./object.ts";
import { PerCpuCodec, type Codec } from "./codec.ts";
import { possibleCpus } from "./percpu.ts";
import { cString, libc } from "../libc.ts";

const ENOENT = 2;
const EINVAL = 22;
const ENOSPC = 28;
const EAGAIN = 11;
const EBADF = 9;
const EOPNOTSUPP = 95;

/** enum bpf_map_type values we treat specially. */
const MapType = {
  hash: 1,
  array: 2,
  progArray: 3,
  perfEventArray: 4,
  percpuHash: 5,
  percpuArray: 6,
  cgroupArray: 8,
  lruHash: 9,
  lruPercpuHash: 10,
  arrayOfMaps: 12,
  percpuCgroupStorage: 21,
} as const;

const perCpuTypes = new Set<number>([
  MapType.percpuHash,
  MapType.percpuArray,
  MapType.lruPercpuHash,
  MapType.percpuCgroupStorage,
]);

/** Index-keyed maps: every key below max_entries exists, entries cannot be deleted, iteration is stable. */
const arrayTypes = new Set<number>([
  MapType.array,
  MapType.progArray,
  MapType.perfEventArray,
  MapType.percpuArray,
  MapType.cgroupArray,
  MapType.arrayOfMaps,
]);

/** Map types implementing BPF_MAP_LOOKUP_BATCH / BPF_MAP_UPDATE_BATCH (others fall back to one call per entry). */
const batchTypes = new Set<number>([
  MapType.hash,
  MapType.array,
  MapType.percpuHash,
  MapType.percpuArray,
  MapType.lruHash,
  MapType.lruPercpuHash,
]);

/** BPF_ANY, BPF_NOEXIST, BPF_EXIST. */
const updateFlags = { any: 0, noexist: 1, exist: 2 } as const;
export type UpdateFlag = keyof typeof updateFlags;

/** Entries read in one BPF_MAP_LOOKUP_BATCH call (grown if one hash bucket holds more). */
const batchChunk = 256;

export class BpfMap<K, V> {
  readonly name: string;
  /** libbpf's name of the map type: "hash", "lpm_trie", "percpu_array", ... */
  readonly type: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly key: Codec<K>;
  readonly value: Codec<V>;
  private readonly typeId: number;
  private readonly source: BpfMapHandle | number;
  /** Set when we opened the descriptor ourselves (openPinned) and so must close it. */
  private ownedFd: number | null;
  private closed = false;

  /**
   * Wraps a map of a loaded BpfObject, or a map descriptor the caller keeps owning. For per-CPU
   * maps the value codec must be `perCpu(element)`.
   */
  constructor(source: BpfMapHandle | number, key: Codec<K>, value: Codec<V>) {
    this.source = source;
    this.ownedFd = null;
    this.key = key;
    this.value = value;
    const info = mapInfo(this.fd);
    this.name = info.name;
    this.type = info.type;
    this.typeId = info.typeId;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.checkCodecs();
  }

  /** Opens a map pinned on bpffs; close() releases the descriptor (the pin stays). */
  static openPinned<K, V>(path: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> {
    const fd = check(`open pinned map ${path}`, () => libbpf().bpf_obj_get(cString(path)));
    try {
      const map = new BpfMap(fd, key, value);
      map.ownedFd = fd;
      return map;
    } catch (error) {
      libc.close(fd);
      throw error;
    }
  }

  /** What the kernel says of a map pinned on bpffs (type, sizes, max_entries), without codecs. */
  static pinnedInfo(path: string): MapInfo {
    const fd = check(`open pinned map ${path}`, () => libbpf().bpf_obj_get(cString(path)));
    try {
      return mapInfo(fd);
    } finally {
      libc.close(fd);
    }
  }

  private checkCodecs(): void {
    const mismatch = (what: string) => new BpfError(`use map "${this.name}" (${this.type}): ${what}`, EINVAL);
    if (this.key.size !== this.keySize) {
      throw mismatch(`key codec is ${this.key.size} bytes, the map's keys are ${this.keySize}`);
    }
    const perCpuMap = perCpuTypes.has(this.typeId);
    if (perCpuMap !== (this.value instanceof PerCpuCodec)) {
      throw mismatch(
        perCpuMap ? "a per-CPU map needs a perCpu(...) value codec" : "perCpu(...) value codec on a map that is not per-CPU",
      );
    }
    const elementSize = this.value instanceof PerCpuCodec ? this.value.element.size : this.value.size;
    if (elementSize !== this.valueSize) {
      throw mismatch(`value codec is ${elementSize} bytes, the map's values are ${this.valueSize}`);
    }
    if (this.value instanceof PerCpuCodec && this.value.cpus !== possibleCpus()) {
      throw mismatch(`perCpu codec for ${this.value.cpus} CPUs, the kernel has ${possibleCpus()} possible`);
    }
  }

  get fd(): number {
    if (this.closed) throw new BpfError(`use map "${this.name}"`, EBADF);
    return typeof this.source === "number" ? this.source : this.source.fd;
  }

  /** Pins the map on bpffs so it outlives this process (and can be reused by a later load). */
  pin(path: string): void {
    const fd = this.fd;
    check(`pin map "${this.name}" at ${path}`, () => libbpf().bpf_obj_pin(fd, cString(path)));
  }

  lookup(key: K): V | undefined {
    const raw = this.lookupRaw(this.key.encode(key));
    return raw === undefined ? undefined : this.value.decode(raw);
  }

  update(key: K, value: V, flag: UpdateFlag = "any"): void {
    const fd = this.fd;
    const keyBytes = this.key.encode(key);
    const valueBytes = this.value.encode(value);
    check(`update ${flag} in map "${this.name}"`, () =>
      libbpf().bpf_map_update_elem(fd, keyBytes, valueBytes, updateFlags[flag]),
    );
  }

  /** Removes an entry; false if there was none. Array maps cannot delete (use update or clear). */
  delete(key: K): boolean {
    return this.deleteRaw(this.key.encode(key));
  }

  /**
   * Iterates entries with BPF_MAP_GET_NEXT_KEY. Entries may be added or removed meanwhile (by
   * the datapath, or by the caller deleting the entry it was just given): each key is yielded at
   * most once, and a key that vanished before its value was read is skipped.
   */
  *entries(): Generator<[K, V]> {
    for (const rawKey of this.rawKeys()) {
      const rawValue = this.lookupRaw(rawKey);
      if (rawValue !== undefined) yield [this.key.decode(rawKey), this.value.decode(rawValue)];
    }
  }

  *keys(): Generator<K> {
    for (const rawKey of this.rawKeys()) yield this.key.decode(rawKey);
  }

  /** All entries, read many per syscall where the kernel supports it for this map type. */
  batchLookup(): Array<[K, V]> {
    if (!batchTypes.has(this.typeId)) return [...this.entries()];
    const fd = this.fd;
    const opts = batchOpts();
    // The batch cursor is a hash bucket number (u32) or, for arrays, a key.
    const cursorSize = Math.max(this.keySize, 8);
    let cursor: Uint8Array | null = null;
    let chunk = Math.min(batchChunk, Math.max(this.maxEntries, 1));
    const result: Array<[K, V]> = [];
    for (;;) {
      const next = new Uint8Array(cursorSize);
      const keys = new Uint8Array(chunk * this.keySize);
      const values = new Uint8Array(chunk * this.value.size);
      const count = new Uint32Array([chunk]);
      const ret = libbpf().bpf_map_lookup_batch(fd, cursor, next, keys, values, count, opts);
      const read = count[0] ?? 0;
      if (ret === -ENOSPC && read === 0) {
        chunk *= 2;
        continue;
      }
      if (ret < 0 && ret !== -ENOENT) {
        if (cursor === null && isUnsupported(ret)) return [...this.entries()];
        throw new BpfError(`batch lookup in map "${this.name}"`, -ret);
      }
      for (let i = 0; i < read; i++) {
        result.push([this.key.decode(keys, i * this.keySize), this.value.decode(values, i * this.value.size)]);
      }
      if (ret === -ENOENT) return result;
      cursor = next;
    }
  }

  /**
   * How many entries the map holds now (an array map: always max_entries). Reads keys and values
   * many per syscall where supported, without decoding them: cheap enough for a metrics scrape.
   */
  count(): number {
    if (arrayTypes.has(this.typeId)) return this.maxEntries;
    let counted = 0;
    if (!batchTypes.has(this.typeId)) {
      for (const _ of this.rawKeys()) counted++;
      return counted;
    }
    const fd = this.fd;
    const opts = batchOpts();
    const cursorSize = Math.max(this.keySize, 8);
    let cursor: Uint8Array | null = null;
    let chunk = Math.min(64 * batchChunk, Math.max(this.maxEntries, 1));
    let keys = new Uint8Array(chunk * this.keySize);
    let values = new Uint8Array(chunk * this.value.size);
    for (;;) {
      const next = new Uint8Array(cursorSize);
      const read = new Uint32Array([chunk]);
      const ret = libbpf().bpf_map_lookup_batch(fd, cursor, next, keys, values, read, opts);
      if (ret === -ENOSPC && read[0] === 0) {
        chunk *= 2;
        keys = new Uint8Array(chunk * this.keySize);
        values = new Uint8Array(chunk * this.value.size);
        continue;
      }
      if (ret < 0 && ret !== -ENOENT) {
        if (cursor === null && isUnsupported(ret)) {
          for (const _ of this.rawKeys()) counted++;
          return counted;
        }
        throw new BpfError(`batch lookup in map "${this.name}"`, -ret);
      }
      counted += read[0] ?? 0;
      if (ret === -ENOENT) return counted;
      cursor = next;
    }
  }

  /** Writes many entries per syscall where supported (with BPF_ANY semantics). */
  batchUpdate(entries: Iterable<readonly [K, V]>): void {
    const list = [...entries];
    if (list.length === 0) return;
    if (!batchTypes.has(this.typeId)) {
      for (const [key, value] of list) this.update(key, value);
      return;
    }
    const fd = this.fd;
    const keys = new Uint8Array(list.length * this.keySize);
    const values = new Uint8Array(list.length * this.value.size);
    list.forEach(([key, value], i) => {
      keys.set(this.key.encode(key), i * this.keySize);
      values.set(this.value.encode(value), i * this.value.size);
    });
    const count = new Uint32Array([list.length]);
    const ret = libbpf().bpf_map_update_batch(fd, keys, values, count, batchOpts());
    if (ret < 0) {
      if (isUnsupported(ret) && count[0] === 0) {
        for (const [key, value] of list) this.update(key, value);
        return;
      }
      throw new BpfError(`batch update of ${list.length} entries in map "${this.name}" (${count[0]} written)`, -ret);
    }
  }

  /** Removes every entry; array maps, whose entries always exist, get zeroed values instead. */
  clear(): void {
    if (arrayTypes.has(this.typeId)) {
      const fd = this.fd;
      const zero = new Uint8Array(this.value.size);
      const index = new Uint32Array(1);
      for (let i = 0; i < this.maxEntries; i++) {
        index[0] = i;
        check(`clear entry ${i} of map "${this.name}"`, () => libbpf().bpf_map_update_elem(fd, index, zero, 0));
      }
      return;
    }
    for (const rawKey of [...this.rawKeys()]) this.deleteRaw(rawKey);
  }

  /** Releases the descriptor if openPinned opened it; further use throws. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownedFd !== null) libc.close(this.ownedFd);
    this.ownedFd = null;
  }

  private lookupRaw(key: Uint8Array): Uint8Array | undefined {
    const fd = this.fd;
    const value = new Uint8Array(this.value.size);
    const ret = libbpf().bpf_map_lookup_elem(fd, key, value);
    if (ret === -ENOENT) return undefined;
    if (ret < 0) throw new BpfError(`lookup in map "${this.name}"`, -ret);
    return value;
  }

  private deleteRaw(key: Uint8Array): boolean {
    const fd = this.fd;
    const ret = libbpf().bpf_map_delete_elem(fd, key);
    if (ret === -ENOENT) return false;
    if (ret < 0) throw new BpfError(`delete from map "${this.name}"`, -ret);
    return true;
  }

  private nextKey(previous: Uint8Array | null): Uint8Array | null {
    const fd = this.fd;
    const next = new Uint8Array(this.keySize);
    const ret = libbpf().bpf_map_get_next_key(fd, previous, next);
    if (ret === -ENOENT) return null;
    if (ret < 0) throw new BpfError(`iterate map "${this.name}"`, -ret);
    return next;
  }

  /**
   * Raw keys, robust against concurrent change. The next key is fetched before the current one
   * is handed out, so deleting the current key does not disturb the walk. If some other key we
   * were positioned on vanishes, a hash map's GET_NEXT_KEY starts over from the first key: keys
   * already seen are then skipped, up to a bound that stops a map churning faster than we read.
   */
  private *rawKeys(): Generator<Uint8Array> {
    const seen = arrayTypes.has(this.typeId) ? null : new Set<string>();
    const maxRepeats = 4 * this.maxEntries + 16;
    let repeats = 0;
    let current = this.nextKey(null);
    while (current !== null) {
      const next = this.nextKey(current);
      if (seen === null) {
        yield current;
      } else {
        const id = Buffer.from(current.buffer, current.byteOffset, current.length).toString("latin1");
        if (!seen.has(id)) {
          seen.add(id);
          yield current;
        } else if (++repeats > maxRepeats) {
          throw new BpfError(`iterate map "${this.name}": it kept changing, the walk restarted too often`, EAGAIN);
        }
      }
      current = next;
    }
  }
}

function batchOpts(): Uint8Array {
  return bpf_map_batch_opts.encode({ sz: BigInt(bpf_map_batch_opts.size), elem_flags: 0n, flags: 0n });
}

function isUnsupported(ret: number): boolean {
  return ret === -EINVAL || ret === -ENOTSUPP || ret === -EOPNOTSUPP;
}
