/**
 * Protobuf binary encoding of plain message objects (proto field names, enums as numbers,
 * wrappers as { value }), driven by schema.ts: the codec of the hubble CLI and, through
 * grpc.ts, of the agent's Hubble server and the relay. Fields are written in field-number
 * order, as protobufjs writes them. Decoding gives what protobufjs's toObject gives: 64-bit
 * integers as numbers, bytes as Uint8Array, only the fields present on the wire.
 */
import { messageSchema, type FieldSchema, type MessageSchema } from "./schema.ts";

type Obj = Record<string, unknown>;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const VARINT_TYPES = new Set(["int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool"]);
const I64_TYPES = new Set(["fixed64", "sfixed64", "double"]);
const I32_TYPES = new Set(["fixed32", "sfixed32", "float"]);

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class WireError extends Error {
  override name = "WireError";
}

function wireType(f: FieldSchema): number {
  if (f.enumType) return WIRE_VARINT;
  const s = f.scalar;
  if (s === undefined) return WIRE_LEN;
  if (VARINT_TYPES.has(s)) return WIRE_VARINT;
  if (I64_TYPES.has(s)) return WIRE_I64;
  if (I32_TYPES.has(s)) return WIRE_I32;
  return WIRE_LEN;
}

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  varint(v: bigint | number): void {
    this.reserve(10);
    // Numbers up to 2^53 (tags, lengths, ports, identities, timestamps) without BigInt.
    if (typeof v === "number" && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      let n = v;
      while (n >= 0x80) {
        this.buf[this.len++] = (n % 0x80) | 0x80;
        n = Math.floor(n / 0x80);
      }
      this.buf[this.len++] = n;
      return;
    }
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      this.buf[this.len++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.len++] = Number(n);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** A length-delimited string; ASCII (most flow strings) written byte by byte, no TextEncoder. */
  string(text: string): void {
    const n = text.length;
    if (n < 0x80) {
      this.reserve(n + 1);
      const start = this.len;
      const buf = this.buf;
      buf[start] = n;
      let i = 0;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + 1 + i] = c;
      }
      if (i === n) {
        this.len = start + 1 + n;
        return;
      }
    }
    this.bytes(textEncoder.encode(text));
  }

  /**
   * A nested message written in place: one byte is kept for its length, and the body moves when
   * the length needs more (a message of 128 bytes or more), instead of a writer per message.
   */
  nested(write: () => void): void {
    this.reserve(1);
    const at = this.len++;
    write();
    const length = this.len - at - 1;
    if (length < 0x80) {
      this.buf[at] = length;
      return;
    }
    let size = 1;
    for (let rest = length; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
    this.reserve(size - 1);
    this.buf.copyWithin(at + size, at + 1, this.len);
    this.len = at;
    this.varint(length);
    this.len += length;
  }

  fixed(size: 4 | 8, write: (view: DataView, at: number) => void): void {
    this.reserve(size);
    write(this.view, this.len);
    this.len += size;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** An integer field's value: a safe non-negative number as it is (the varint fast path), else a bigint. */
function toInteger(v: unknown): bigint | number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER) return v;
  return toBigInt(v);
}

function toBigInt(v: unknown): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  throw new WireError(`${String(v)} is not an integer`);
}

function encodeScalar(w: Writer, type: string, v: unknown): void {
  switch (type) {
    case "bool":
      return w.varint(v ? 1 : 0);
    case "int32":
    case "int64":
    case "uint32":
    case "uint64":
      return w.varint(toInteger(v));
    case "sint32":
    case "sint64": {
      const n = toBigInt(v);
      return w.varint(n >= 0n ? n << 1n : (-n << 1n) - 1n);
    }
    case "fixed32":
      return w.fixed(4, (d, at) => d.setUint32(at, Number(v), true));
    case "sfixed32":
      return w.fixed(4, (d, at) => d.setInt32(at, Number(v), true));
    case "float":
      return w.fixed(4, (d, at) => d.setFloat32(at, Number(v), true));
    case "fixed64":
    case "sfixed64":
      return w.fixed(8, (d, at) => d.setBigUint64(at, BigInt.asUintN(64, toBigInt(v)), true));
    case "double":
      return w.fixed(8, (d, at) => d.setFloat64(at, Number(v), true));
    case "string":
      return w.string(String(v));
    case "bytes":
      return w.bytes(v as Uint8Array);
  }
}

function isDefault(v: unknown): boolean {
  return v === undefined || v === null || v === 0 || v === 0n || v === false || v === "" || (v instanceof Uint8Array && v.length === 0);
}

function encodeField(w: Writer, f: FieldSchema, v: unknown, options: EncodeOptions): void {
  const wt = wireType(f);
  const message = f.message;
  if (message) {
    w.varint((f.id << 3) | WIRE_LEN);
    w.nested(() => encodeInto(w, message, v as Obj, options));
    return;
  }
  w.varint((f.id << 3) | wt);
  encodeScalar(w, f.scalar ?? "int32", v);
}

function encodeInto(w: Writer, type: MessageSchema, msg: Obj, options: EncodeOptions): Writer {
  for (const f of type.fieldsById) {
    const v = msg[f.name];
    if (v === undefined || v === null) continue;
    if (!f.repeated) {
      if (!options.setDefaults && !f.message && !f.inOneof && isDefault(v)) continue;
      encodeField(w, f, v, options);
      continue;
    }
    const list = v as unknown[];
    if (list.length === 0) continue;
    if (wireType(f) === WIRE_LEN) {
      for (const item of list) encodeField(w, f, item, options);
    } else {
      // proto3 packs repeated numbers.
      const packed = new Writer();
      for (const item of list) encodeScalar(packed, f.scalar ?? "int32", item);
      w.varint((f.id << 3) | WIRE_LEN);
      w.bytes(packed.finish());
    }
  }
  return w;
}

export interface EncodeOptions {
  /**
   * Also write the fields set to their proto3 default (0, false, ""), as protobufjs does for any
   * field present in the object. Readers must take an absent field as its default, but clients
   * written against protobufjs-speaking servers may not.
   */
  setDefaults?: boolean;
}

/** `msg` as message type `typeName` ("observer.GetFlowsRequest") in protobuf binary form. */
export function encodeMessage(typeName: string, msg: object, options: EncodeOptions = {}): Uint8Array {
  return encodeInto(new Writer(), messageSchema(typeName), msg as Obj, options).finish();
}

class Reader {
  pos = 0;
  /** Where the message being read ends (nested messages narrow it while they are read). */
  end: number;
  private readonly view: DataView;

  constructor(readonly buf: Uint8Array) {
    this.end = buf.length;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** A varint as a number; exact up to 2^53, which flow counters and timestamps stay below. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new WireError("varint longer than 10 bytes");
  }

  /** The low 32 bits of a varint (int32, uint32, enums; negative int32 take 10 bytes). */
  varint32(): number {
    const buf = this.buf;
    let v = 0;
    for (let shift = 0; shift < 32; shift += 7) {
      const b = buf[this.pos++]!;
      v |= (b & 0x7f) << shift;
      if (b < 0x80) {
        if (this.pos > this.end) throw new WireError("truncated varint");
        return v;
      }
    }
    // Bits above 32 carry only the sign extension.
    for (let i = 0; i < 5; i++) if (buf[this.pos++]! < 0x80) break;
    if (this.pos > this.end) throw new WireError("truncated varint");
    return v;
  }

  /** A varint as its low and high 32 bits (signed types need the exact bit pattern). */
  varint64(): [lo: number, hi: number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const b = this.buf[this.pos++]!;
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80) return [lo >>> 0, hi >>> 0];
    }
    throw new WireError("varint longer than 10 bytes");
  }

  skip(wt: number): void {
    if (wt === WIRE_VARINT) this.varint();
    else if (wt === WIRE_I64) this.pos += 8;
    else if (wt === WIRE_LEN) this.pos += this.varint();
    else if (wt === WIRE_I32) this.pos += 4;
    else throw new WireError(`unsupported wire type ${wt}`);
    if (this.pos > this.end) throw new WireError("truncated field");
  }

  /** UTF-8 text; short ASCII (most flow strings) without TextDecoder, which costs more per call. */
  string(): string {
    const len = this.varint();
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw new WireError("truncated string");
    this.pos = end;
    if (len <= 64) {
      let ascii = true;
      for (let i = start; i < end; i++) if (this.buf[i]! >= 0x80) ascii = false;
      if (ascii) return String.fromCharCode.apply(null, this.buf.subarray(start, end) as unknown as number[]);
    }
    return textDecoder.decode(this.buf.subarray(start, end));
  }

  fixed32(signed: boolean): number {
    const v = signed ? this.view.getInt32(this.pos, true) : this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  fixed64(signed: boolean): number {
    const v = signed ? this.view.getBigInt64(this.pos, true) : this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return Number(v);
  }

  float(size: 4 | 8): number {
    const v = size === 4 ? this.view.getFloat32(this.pos, true) : this.view.getFloat64(this.pos, true);
    this.pos += size;
    return v;
  }
}

function readScalar(r: Reader, type: string): unknown {
  switch (type) {
    case "bool":
      return r.varint() !== 0;
    case "uint32":
      return r.varint32() >>> 0;
    case "int32":
      return r.varint32() | 0;
    case "uint64":
      return r.varint();
    case "int64": {
      // Timestamps and counters: exact while below 2^53; negatives keep their sign (not every bit).
      const n = r.varint();
      return n < 2 ** 63 ? n : n - 2 ** 64;
    }
    case "sint32":
    case "sint64": {
      const [lo, hi] = r.varint64();
      const n = (BigInt(hi) << 32n) | BigInt(lo);
      return Number((n >> 1n) ^ -(n & 1n));
    }
    case "fixed32":
      return r.fixed32(false);
    case "sfixed32":
      return r.fixed32(true);
    case "fixed64":
      return r.fixed64(false);
    case "sfixed64":
      return r.fixed64(true);
    case "float":
      return r.float(4);
    case "double":
      return r.float(8);
    case "string":
      return r.string();
    case "bytes": {
      const len = r.varint();
      const b = r.buf.slice(r.pos, r.pos + len);
      r.pos += len;
      return b;
    }
  }
  throw new WireError(`unsupported scalar type ${type}`);
}

export interface DecodeOptions {
  /** Repeated fields absent from the wire as empty arrays (protobufjs's `arrays` option). */
  arrays?: boolean;
}

function decodeFrom(r: Reader, type: MessageSchema, options: DecodeOptions): Obj {
  const out: Obj = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    const wt = tag & 7;
    const f = type.byId.get(Math.floor(tag / 8));
    if (f === undefined) {
      r.skip(wt);
      continue;
    }
    let value: unknown;
    const message = f.message;
    if (message) {
      const len = r.varint();
      const outer = r.end;
      r.end = r.pos + len;
      if (r.end > outer) throw new WireError(`truncated field ${type.fullName}.${f.name}`);
      value = decodeFrom(r, message, options);
      r.end = outer;
    } else {
      const scalar = f.scalar ?? "int32";
      if (f.repeated && wt === WIRE_LEN && wireType(f) !== WIRE_LEN) {
        const len = r.varint();
        const outer = r.end;
        r.end = r.pos + len;
        const list = (out[f.name] ??= []) as unknown[];
        while (r.pos < r.end) list.push(readScalar(r, scalar));
        r.end = outer;
        continue;
      }
      value = readScalar(r, scalar);
    }
    if (r.pos > r.end) throw new WireError(`truncated field ${type.fullName}.${f.name}`);
    if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(value);
    else out[f.name] = value;
  }
  if (options.arrays) for (const f of type.fields) if (f.repeated && out[f.name] === undefined) out[f.name] = [];
  return out;
}

/** Protobuf binary `bytes` as a plain object of message type `typeName`. */
export function decodeMessage<T = Obj>(typeName: string, bytes: Uint8Array, options: DecodeOptions = {}): T {
  return decodeFrom(new Reader(bytes), messageSchema(typeName), options) as T;
}
