/**
 * Netlink wire format: struct nlmsghdr framing, fixed family headers and struct nlattr (rtattr)
 * attributes, including nested ones. Pure byte work, no I/O, so it is unit tested without a kernel.
 *
 * Netlink integers are in host byte order (except the few attributes the kernel marks __be16 or
 * __be32, which have their own accessors), and every header and attribute starts on a 4-byte
 * boundary (NLMSG_ALIGN / NLA_ALIGN).
 */
import { endianness } from "node:os";
import {
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from "./constants.ts";

const LITTLE_ENDIAN = endianness() === "LE";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Rounds up to the 4-byte netlink alignment. */
export function align(length: number): number {
  return (length + 3) & ~3;
}

/** A fixed-layout C struct in host byte order (ifinfomsg, rtmsg, ...), read or written by offset. */
export class Struct {
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(sizeOrBytes: number | Uint8Array) {
    this.bytes = typeof sizeOrBytes === "number" ? new Uint8Array(sizeOrBytes) : sizeOrBytes;
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  u8(offset: number): number {
    return this.view.getUint8(offset);
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, LITTLE_ENDIAN);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, LITTLE_ENDIAN);
  }
  s32(offset: number): number {
    return this.view.getInt32(offset, LITTLE_ENDIAN);
  }
  setU8(offset: number, value: number): this {
    this.view.setUint8(offset, value);
    return this;
  }
  setU16(offset: number, value: number): this {
    this.view.setUint16(offset, value, LITTLE_ENDIAN);
    return this;
  }
  setU32(offset: number, value: number): this {
    this.view.setUint32(offset, value >>> 0, LITTLE_ENDIAN);
    return this;
  }
  setS32(offset: number, value: number): this {
    this.view.setInt32(offset, value, LITTLE_ENDIAN);
    return this;
  }
}

/**
 * Builds one request: nlmsghdr, the family header, then attributes. Nested attributes are
 * written in place and their length patched when the nest closes, so no intermediate buffers.
 */
export class MessageBuilder {
  private buffer = new Uint8Array(256);
  private length = NLMSG_HDRLEN;

  constructor(
    readonly type: number,
    readonly flags: number,
  ) {}

  /** Appends a fixed struct (the family header, or the ifinfomsg inside VETH_INFO_PEER). */
  struct(bytes: Uint8Array): this {
    this.append(bytes);
    return this;
  }

  attr(type: number, payload: Uint8Array): this {
    const start = this.reserve(NLA_HDRLEN);
    this.append(payload);
    this.writeAttrHeader(start, type, NLA_HDRLEN + payload.byteLength);
    return this;
  }

  u8(type: number, value: number): this {
    return this.attr(type, Uint8Array.of(value));
  }
  u16(type: number, value: number): this {
    return this.attr(type, new Struct(2).setU16(0, value).bytes);
  }
  u32(type: number, value: number): this {
    return this.attr(type, new Struct(4).setU32(0, value).bytes);
  }
  s32(type: number, value: number): this {
    return this.attr(type, new Struct(4).setS32(0, value).bytes);
  }
  /** A __be16 attribute, e.g. a UDP port. */
  be16(type: number, value: number): this {
    return this.attr(type, Uint8Array.of((value >> 8) & 0xff, value & 0xff));
  }
  /** A NUL-terminated string attribute (NLA_STRING/NLA_NUL_STRING both accept the NUL). */
  string(type: number, value: string): this {
    return this.attr(type, encoder.encode(`${value}\0`));
  }

  /** A nested attribute (NLA_F_NESTED set, as iproute2 does); `build` appends its contents. */
  nest(type: number, build: (message: this) => void): this {
    const start = this.reserve(NLA_HDRLEN);
    build(this);
    this.writeAttrHeader(start, type | NLA_F_NESTED, this.length - start);
    return this;
  }

  /**
   * The finished message with nlmsg_len, nlmsg_seq and nlmsg_pid filled in; `extraFlags` are the
   * socket's (NLM_F_REQUEST, NLM_F_ACK or NLM_F_DUMP), ORed into the builder's own.
   */
  finish(seq: number, pid = 0, extraFlags = 0): Uint8Array {
    new Struct(this.buffer.subarray(0, NLMSG_HDRLEN))
      .setU32(0, this.length)
      .setU16(4, this.type)
      .setU16(6, this.flags | extraFlags)
      .setU32(8, seq)
      .setU32(12, pid);
    return this.buffer.slice(0, this.length);
  }

  private writeAttrHeader(offset: number, type: number, length: number): void {
    if (length > 0xffff) throw new RangeError(`netlink attribute ${type & NLA_TYPE_MASK} is too long (${length} bytes)`);
    new Struct(this.buffer.subarray(offset, offset + NLA_HDRLEN)).setU16(0, length).setU16(2, type);
  }

  /** Appends bytes plus zero padding to the next 4-byte boundary. */
  private append(bytes: Uint8Array): void {
    const start = this.reserve(bytes.byteLength);
    this.buffer.set(bytes, start);
  }

  private reserve(size: number): number {
    const start = this.length;
    const end = start + align(size);
    if (end > this.buffer.byteLength) {
      const grown = new Uint8Array(Math.max(end, this.buffer.byteLength * 2));
      grown.set(this.buffer.subarray(0, start));
      this.buffer = grown;
    }
    this.buffer.fill(0, start, end);
    this.length = end;
    return start;
  }
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the nlmsghdr (a view into the receive buffer: copy what outlives it). */
  payload: Uint8Array;
}

/** Splits one received datagram into its messages; throws on a malformed length. */
export function parseMessages(datagram: Uint8Array): NetlinkMessage[] {
  const messages: NetlinkMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= datagram.byteLength) {
    const header = new Struct(datagram.subarray(offset, offset + NLMSG_HDRLEN));
    const length = header.u32(0);
    if (length < NLMSG_HDRLEN || offset + length > datagram.byteLength) {
      throw new Error(`malformed netlink message: length ${length} at offset ${offset} of ${datagram.byteLength}`);
    }
    messages.push({
      type: header.u16(4),
      flags: header.u16(6),
      seq: header.u32(8),
      pid: header.u32(12),
      payload: datagram.subarray(offset + NLMSG_HDRLEN, offset + length),
    });
    offset += align(length);
  }
  return messages;
}

/** The attributes of one message or nest, by type (flags masked off; a repeated type keeps the last). */
export class Attributes {
  private readonly byType = new Map<number, Uint8Array>();

  /** Parses a run of attributes; a truncated tail is ignored, as the kernel's nla_for_each_attr does. */
  constructor(bytes: Uint8Array) {
    let offset = 0;
    while (offset + NLA_HDRLEN <= bytes.byteLength) {
      const header = new Struct(bytes.subarray(offset, offset + NLA_HDRLEN));
      const length = header.u16(0);
      if (length < NLA_HDRLEN || offset + length > bytes.byteLength) break;
      this.byType.set(header.u16(2) & NLA_TYPE_MASK, bytes.subarray(offset + NLA_HDRLEN, offset + length));
      offset += align(length);
    }
  }

  get types(): number[] {
    return [...this.byType.keys()];
  }
  has(type: number): boolean {
    return this.byType.has(type);
  }
  bytes(type: number): Uint8Array | undefined {
    return this.byType.get(type);
  }
  u8(type: number): number | undefined {
    const value = this.sized(type, 1);
    return value && value[0];
  }
  u16(type: number): number | undefined {
    const value = this.sized(type, 2);
    return value && new Struct(value).u16(0);
  }
  u32(type: number): number | undefined {
    const value = this.sized(type, 4);
    return value && new Struct(value).u32(0);
  }
  s32(type: number): number | undefined {
    const value = this.sized(type, 4);
    return value && new Struct(value).s32(0);
  }
  be16(type: number): number | undefined {
    const value = this.sized(type, 2);
    return value && (value[0]! << 8) | value[1]!;
  }
  /** A string attribute, up to its first NUL. */
  string(type: number): string | undefined {
    const value = this.byType.get(type);
    if (!value) return undefined;
    const nul = value.indexOf(0);
    return decoder.decode(nul === -1 ? value : value.subarray(0, nul));
  }
  nested(type: number): Attributes | undefined {
    const value = this.byType.get(type);
    return value && new Attributes(value);
  }

  private sized(type: number, size: number): Uint8Array | undefined {
    const value = this.byType.get(type);
    return value && value.byteLength >= size ? value : undefined;
  }
}

/** What an NLMSG_ERROR (or the error field of an NLMSG_DONE) says. */
export interface ErrorReply {
  /** Positive errno; 0 is a plain ACK. */
  errno: number;
  /** The extended-ack text (NLMSGERR_ATTR_MSG), when the kernel sent one. */
  message?: string;
  /** Offset in the request of the attribute the kernel rejected (NLMSGERR_ATTR_OFFS). */
  offset?: number;
}

/**
 * Decodes struct nlmsgerr and its extended-ack TLVs. The request header (and, unless
 * NLM_F_CAPPED, the request payload) sits between the error code and the TLVs.
 */
export function parseErrorReply(message: NetlinkMessage): ErrorReply {
  const { payload } = message;
  if (payload.byteLength < 4) throw new Error(`truncated netlink error/done message (${payload.byteLength} bytes)`);
  const error = new Struct(payload).s32(0);
  const reply: ErrorReply = { errno: error === 0 ? 0 : -error };
  if (!(message.flags & NLM_F_ACK_TLVS)) return reply;

  let tlvOffset = 4;
  if (message.type === NLMSG_ERROR) {
    if (payload.byteLength < 4 + NLMSG_HDRLEN) return reply;
    const echoedLength = new Struct(payload.subarray(4, 4 + NLMSG_HDRLEN)).u32(0);
    tlvOffset += message.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align(echoedLength);
  } else if (message.type !== NLMSG_DONE) {
    throw new Error(`netlink message type ${message.type} is not an error reply`);
  }
  const tlvs = new Attributes(payload.subarray(Math.min(tlvOffset, payload.byteLength)));
  const text = tlvs.string(NLMSGERR_ATTR_MSG);
  if (text) reply.message = text;
  const offset = tlvs.u32(NLMSGERR_ATTR_OFFS);
  if (offset !== undefined) reply.offset = offset;
  return reply;
}

/** The fixed family header (ifinfomsg, rtmsg, ...) of a reply and the attributes after it. */
export function decodeBody(message: NetlinkMessage, headerLength: number): { header: Struct; attributes: Attributes } {
  if (message.payload.byteLength < headerLength) {
    throw new Error(`netlink message type ${message.type} is too short (${message.payload.byteLength} < ${headerLength} bytes)`);
  }
  return {
    header: new Struct(message.payload.subarray(0, headerLength)),
    attributes: new Attributes(message.payload.subarray(align(headerLength))),
  };
}
