/**
 * The monitor socket's wire format (ours; upstream's speaks Go's gob). A stream of frames:
 *
 *   u32 little-endian payload length | u8 kind | payload
 *
 *   kind 1 RECORD  payload = one cilium_events record, as the datapath wrote it (events.h)
 *   kind 2 LOST    payload = u64 LE count | u8 where: 0 the datapath's ring was full,
 *                  1 this client's queue in the agent was full (the client read too slowly)
 *
 * Nothing is sent by the client; closing the connection unsubscribes it.
 */

export const FRAME_HEADER_LEN = 5;
export const FrameKind = { record: 1, lost: 2 } as const;
export const LostWhere = { datapath: 0, client: 1 } as const;
const LOST_PAYLOAD_LEN = 9;
/** No record is anywhere near this; a bigger length means the stream is not ours. */
export const MAX_FRAME_PAYLOAD = 1 << 16;

export type MonitorFrame = { kind: "record"; record: Uint8Array } | { kind: "lost"; count: number; where: "datapath" | "client" };

export class MonitorProtocolError extends Error {
  override name = "MonitorProtocolError";
}

/** Writes a record frame into `target` at `offset`; returns the bytes written. */
export function writeRecordFrame(target: Uint8Array, offset: number, record: Uint8Array): number {
  const view = new DataView(target.buffer, target.byteOffset + offset, FRAME_HEADER_LEN);
  view.setUint32(0, record.length, true);
  view.setUint8(4, FrameKind.record);
  target.set(record, offset + FRAME_HEADER_LEN);
  return FRAME_HEADER_LEN + record.length;
}

export const LOST_FRAME_LEN = FRAME_HEADER_LEN + LOST_PAYLOAD_LEN;

/** Writes a lost frame into `target` at `offset`; returns the bytes written. */
export function writeLostFrame(target: Uint8Array, offset: number, count: number, where: keyof typeof LostWhere): number {
  const view = new DataView(target.buffer, target.byteOffset + offset, LOST_FRAME_LEN);
  view.setUint32(0, LOST_PAYLOAD_LEN, true);
  view.setUint8(4, FrameKind.lost);
  view.setBigUint64(5, BigInt(count), true);
  view.setUint8(13, LostWhere[where]);
  return LOST_FRAME_LEN;
}

/** Splits a byte stream into frames, across chunk boundaries. */
export class FrameDecoder {
  private pending: Uint8Array = new Uint8Array(0);

  /** Feeds one chunk; returns the frames it completed (records are copies the caller may keep). */
  push(chunk: Uint8Array): MonitorFrame[] {
    let data = chunk;
    if (this.pending.length > 0) {
      data = new Uint8Array(this.pending.length + chunk.length);
      data.set(this.pending, 0);
      data.set(chunk, this.pending.length);
    }
    const frames: MonitorFrame[] = [];
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let offset = 0;
    while (data.length - offset >= FRAME_HEADER_LEN) {
      const length = view.getUint32(offset, true);
      if (length > MAX_FRAME_PAYLOAD) throw new MonitorProtocolError(`frame of ${length} bytes: this is not a monitor socket of this agent`);
      if (data.length - offset - FRAME_HEADER_LEN < length) break;
      const kind = view.getUint8(offset + 4);
      const start = offset + FRAME_HEADER_LEN;
      if (kind === FrameKind.record) {
        frames.push({ kind: "record", record: data.slice(start, start + length) });
      } else if (kind === FrameKind.lost && length === LOST_PAYLOAD_LEN) {
        const where = view.getUint8(start + 8) === LostWhere.client ? "client" : "datapath";
        frames.push({ kind: "lost", count: Number(view.getBigUint64(start, true)), where });
      } else {
        throw new MonitorProtocolError(`unknown frame kind ${kind} (${length} bytes)`);
      }
      offset = start + length;
    }
    this.pending = data.slice(offset);
    return frames;
  }
}
