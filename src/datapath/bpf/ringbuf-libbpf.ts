/**
 * Reading a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) with libbpf's consumer: a timer drains whatever
 * records are ready (ring_buffer__consume), and libbpf calls back into JS once per record. The
 * reference implementation RingBufferReader (ringbuf.ts) is measured and tested against; the
 * per-record FFI callback makes it several times slower.
 */
import { JSCallback, toArrayBuffer, type Pointer } from "bun:ffi";
import type { RingBufferOptions, RingBufferStats } from "./ringbuf.ts";
import { BpfError, checkPointer } from "./error.ts";
import { libbpf } from "./libbpf.ts";
import type { BpfMapHandle } from "./object.ts";

const EBADF = 9;
const EBUSY = 16;

export class LibbpfRingBufferReader {
  private ring: Pointer | null;
  private callback: JSCallback | null;
  private timer: ReturnType<typeof setInterval> | null;
  private handlerError: { error: unknown } | null = null;
  private consuming = false;
  private closeRequested = false;
  private readonly statistics: RingBufferStats = { records: 0 };

  /**
   * `handler` gets each record as a copy it may keep (the ring's memory is reused as soon as the
   * callback returns).
   */
  constructor(map: BpfMapHandle | number, handler: (record: Uint8Array) => void, options: RingBufferOptions = {}) {
    const fd = typeof map === "number" ? map : map.fd;
    const name = typeof map === "number" ? `fd ${map}` : `"${map.name}"`;
    this.callback = new JSCallback(
      (_context: Pointer | null, data: Pointer, size: number | bigint): number => {
        // An exception must not unwind through libbpf: keep it, stop this round (negative), rethrow after.
        try {
          const length = Number(size);
          const record = length === 0 ? new Uint8Array(0) : new Uint8Array(toArrayBuffer(data, 0, length).slice(0));
          this.statistics.records++;
          handler(record);
          return 0;
        } catch (error) {
          this.handlerError = { error };
          return -1;
        }
      },
      { args: ["ptr", "ptr", "usize"], returns: "i32" },
    );
    const callbackPointer = this.callback.ptr;
    try {
      this.ring = checkPointer(`open ring buffer ${name}`, () => libbpf().ring_buffer__new(fd, callbackPointer, null, null));
    } catch (error) {
      this.callback.close();
      this.callback = null;
      throw error;
    }
    this.timer = setInterval(() => this.drainFromTimer(options.onError), options.pollIntervalMs ?? 100);
  }

  get stats(): RingBufferStats {
    return { ...this.statistics };
  }

  /** Hands every record available now to the handler; returns how many. */
  consumeNow(): number {
    const ring = this.ring;
    if (ring === null) throw new BpfError("consume closed ring buffer", EBADF);
    if (this.consuming) throw new BpfError("consume ring buffer from its own handler", EBUSY);
    const before = this.statistics.records;
    this.consuming = true;
    let ret: number;
    try {
      ret = libbpf().ring_buffer__consume(ring);
    } finally {
      this.consuming = false;
    }
    if (this.closeRequested) this.close();
    const failed = this.handlerError;
    if (failed) {
      this.handlerError = null;
      throw failed.error;
    }
    if (ret < 0) throw new BpfError("consume ring buffer", -ret);
    return this.statistics.records - before;
  }

  /**
   * Stops the timer and frees libbpf's consumer and our callback. Safe to call twice, and from
   * the handler (then it happens once the current round returns).
   */
  close(): void {
    if (this.consuming) {
      this.closeRequested = true;
      return;
    }
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.ring !== null) libbpf().ring_buffer__free(this.ring);
    this.ring = null;
    this.callback?.close();
    this.callback = null;
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
