/**
 * Reading a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) straight from its mmap'ed pages, as libbpf's
 * consumer does but without a native->JS callback per record: the consumer position page (ours
 * to write), then the producer position page and the data area, mapped twice in a row by the
 * kernel so that no record wraps. A timer drains whatever is ready; records are copied out
 * (one memcpy each) and handed to the handler in order. Measured against libbpf's consumer
 * (ringbuf-libbpf.ts) in scripts/benchmarks/ringbuf-read.ts.
 *
 * Record layout (kernel/bpf/ringbuf.c): an 8-byte header, u32 length with BUSY (bit 31: being
 * written) and DISCARD (bit 30) flags, u32 page offset; the data; padded to 8 bytes. Positions
 * are byte counters that only grow. On x86-64 plain loads and stores have the acquire/release
 * ordering the protocol needs; the consumer position is stored with one 8-byte atomic store.
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { check, libc, MAP_SHARED, PROT_READ, PROT_WRITE, _SC_PAGESIZE } from "../libc.ts";
import { BpfError } from "./error.ts";
import { mapInfo } from "./info.ts";
import type { BpfMapHandle } from "./object.ts";

/**
 * Default drain interval. cilium_events holds ~45,600 records: at 600,000 events/s it fills in
 * 75 ms, so the ring must be drained more often than that; an empty drain costs two loads.
 */
const DEFAULT_POLL_INTERVAL_MS = 10;

export interface RingBufferOptions {
  /** How often the timer drains the ring (default 10 ms). */
  pollIntervalMs?: number;
  /** Receives errors of the handler or of consuming; without it they are thrown from the timer. */
  onError?: (error: unknown) => void;
}

export interface RingBufferStats {
  /** Records handed to the handler so far. */
  records: number;
}

const EBADF = 9;
const EBUSY = 16;
const EINVAL = 22;
const HEADER_LEN = 8;
const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const LENGTH_MASK = 0x3fffffff;
/** Give space back to the producer at least this often while draining a long backlog. */
const RELEASE_EVERY = 256;

interface Mapping {
  pointer: Pointer;
  length: number;
}

function mmap(fd: number, length: number, prot: number, offset: number, what: string): Mapping {
  const address = check(`mmap ${what}`, libc.mmap(null, length, prot, MAP_SHARED, fd, offset));
  return { pointer: address as Pointer, length };
}

export class RingBufferReader {
  private readonly mappings: Mapping[] = [];
  /** consumer_pos: ours to advance. */
  private consumerPos: BigUint64Array | null;
  /** producer_pos as two 32-bit halves (little-endian), read-only. */
  private producerPos: Uint32Array | null;
  private data: Uint8Array | null;
  private dataWords: Uint32Array | null;
  private readonly mask: number;
  private timer: ReturnType<typeof setInterval> | null;
  private consuming = false;
  private closeRequested = false;
  private readonly statistics: RingBufferStats = { records: 0 };

  /**
   * `handler` gets each record as a copy it may keep (the ring's memory is reused as soon as the
   * record is consumed).
   */
  constructor(
    map: BpfMapHandle | number,
    private readonly handler: (record: Uint8Array) => void,
    options: RingBufferOptions = {},
  ) {
    const fd = typeof map === "number" ? map : map.fd;
    const name = typeof map === "number" ? `fd ${map}` : `"${map.name}"`;
    const info = mapInfo(fd);
    if (info.type !== "ringbuf") throw new BpfError(`open ring buffer ${name}: map type is ${info.type}, not ringbuf`, EINVAL);
    const size = info.maxEntries;
    const pageSize = Number(libc.sysconf(_SC_PAGESIZE));
    this.mask = size - 1;
    try {
      const consumer = mmap(fd, pageSize, PROT_READ | PROT_WRITE, 0, `consumer page of ring buffer ${name}`);
      this.mappings.push(consumer);
      const producer = mmap(fd, pageSize + 2 * size, PROT_READ, pageSize, `data of ring buffer ${name}`);
      this.mappings.push(producer);
      this.consumerPos = new BigUint64Array(toArrayBuffer(consumer.pointer, 0, 8));
      this.producerPos = new Uint32Array(toArrayBuffer(producer.pointer, 0, 8));
      const area = toArrayBuffer(producer.pointer, pageSize, 2 * size);
      this.data = new Uint8Array(area);
      this.dataWords = new Uint32Array(area);
    } catch (error) {
      this.unmap();
      throw error;
    }
    this.timer = setInterval(() => this.drainFromTimer(options.onError), options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
  }

  get stats(): RingBufferStats {
    return { ...this.statistics };
  }

  /** Hands every record available now to the handler; returns how many. */
  consumeNow(): number {
    if (this.consumerPos === null) throw new BpfError("consume closed ring buffer", EBADF);
    if (this.consuming) throw new BpfError("consume ring buffer from its own handler", EBUSY);
    this.consuming = true;
    const before = this.statistics.records;
    try {
      this.drain();
    } finally {
      this.consuming = false;
      if (this.closeRequested) this.close();
    }
    return this.statistics.records - before;
  }

  /**
   * Stops the timer and unmaps the ring. Safe to call twice, and from the handler (then it
   * happens once the current round returns).
   */
  close(): void {
    if (this.consuming) {
      this.closeRequested = true;
      return;
    }
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.unmap();
  }

  private drain(): void {
    const consumerPos = this.consumerPos!;
    const producerPos = this.producerPos!;
    const data = this.data!;
    const words = this.dataWords!;
    const mask = this.mask;
    let consumer = Number(consumerPos[0]);
    let released = consumer;
    let sinceRelease = 0;
    try {
      for (;;) {
        const producer = producerPos[0]! + producerPos[1]! * 0x100000000;
        if (consumer >= producer) break;
        while (consumer < producer) {
          // Positions grow past 2^32; the offset is the low bits (the size is a power of two).
          const offset = (consumer % 0x100000000 >>> 0) & mask;
          const header = words[offset >>> 2]!;
          if (header & BUSY_BIT) return;
          const length = header & LENGTH_MASK;
          consumer += (HEADER_LEN + length + 7) & ~7;
          if (!(header & DISCARD_BIT)) {
            this.statistics.records++;
            const start = offset + HEADER_LEN;
            // As libbpf: a record whose handler threw counts as consumed; the error ends the round.
            this.handler(data.slice(start, start + length));
          }
          if (++sinceRelease === RELEASE_EVERY) {
            Atomics.store(consumerPos, 0, BigInt(consumer));
            released = consumer;
            sinceRelease = 0;
          }
        }
      }
    } finally {
      if (consumer !== released) Atomics.store(consumerPos, 0, BigInt(consumer));
    }
  }

  private unmap(): void {
    this.consumerPos = this.producerPos = this.data = this.dataWords = null;
    for (const mapping of this.mappings.splice(0)) libc.munmap(mapping.pointer, mapping.length);
  }

  private drainFromTimer(onError: ((error: unknown) => void) | undefined): void {
    try {
      this.consumeNow();
    } catch (error) {
      if (!onError) throw error;
      onError(error);
    }
  }
}
