/**
 * Typed encoders for BPF map keys and values: each codec knows the C layout of one type (size,
 * alignment, byte order) so a TypeScript value can be written into the exact bytes the BPF
 * program reads, and read back. Map data is in host byte order except where a field is declared
 * in network order (be16, be32, ipv4), as the C structs do with __be16/__be32.
 */
import { endianness } from "node:os";

const hostLittleEndian = endianness() === "LE";

/** A value could not be encoded or decoded; `path` names the field it was in ("info.mac"). */
export class CodecError extends Error {
  readonly reason: string;
  readonly path: string;

  constructor(reason: string, path = "") {
    super(path ? `${path}: ${reason}` : reason);
    this.name = "CodecError";
    this.reason = reason;
    this.path = path;
  }

  /** The same error seen from the enclosing struct field or array element. */
  within(step: string): CodecError {
    const path = !this.path ? step : this.path.startsWith("[") ? step + this.path : `${step}.${this.path}`;
    return new CodecError(this.reason, path);
  }
}

export interface Codec<T> {
  /** sizeof in C. */
  readonly size: number;
  /** _Alignof in C. */
  readonly align: number;
  /** Writes `value` at `offset`. Bytes of the range that the value does not cover are left as they are. */
  write(view: DataView, offset: number, value: T): void;
  read(view: DataView, offset: number): T;
  /** A fresh, zero-filled buffer holding `value` (padding bytes stay zero, as hash keys require). */
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array, offset?: number): T;
}

/** The TypeScript type a codec encodes: `Infer<typeof EndpointInfo>`. */
export type Infer<C> = C extends Codec<infer T> ? T : never;

/** How a codec lays out its value; BaseCodec derives encode/decode from it. */
export interface Layout<T> {
  size: number;
  align: number;
  write(view: DataView, offset: number, value: T): void;
  read(view: DataView, offset: number): T;
}

/** A codec from its layout; extend it for types the primitives do not cover. */
export class BaseCodec<T> implements Codec<T> {
  readonly size: number;
  readonly align: number;
  readonly write: (view: DataView, offset: number, value: T) => void;
  readonly read: (view: DataView, offset: number) => T;

  constructor(layout: Layout<T>) {
    this.size = layout.size;
    this.align = layout.align;
    this.write = layout.write;
    this.read = layout.read;
  }

  encode(value: T): Uint8Array {
    const bytes = new Uint8Array(this.size);
    this.write(new DataView(bytes.buffer), 0, value);
    return bytes;
  }

  decode(bytes: Uint8Array, offset = 0): T {
    if (!Number.isInteger(offset) || offset < 0 || bytes.length < offset + this.size) {
      throw new CodecError(`need ${this.size} bytes at offset ${offset}, have ${bytes.length}`);
    }
    return this.read(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
  }
}

function integer(name: string, size: number, min: number, max: number, littleEndian: boolean): Codec<number> {
  const set = {
    1: (v: DataView, o: number, x: number) => v.setUint8(o, x),
    2: (v: DataView, o: number, x: number) => v.setUint16(o, x, littleEndian),
    4: (v: DataView, o: number, x: number) => (min < 0 ? v.setInt32(o, x, littleEndian) : v.setUint32(o, x, littleEndian)),
  }[size as 1 | 2 | 4];
  const get = {
    1: (v: DataView, o: number) => v.getUint8(o),
    2: (v: DataView, o: number) => v.getUint16(o, littleEndian),
    4: (v: DataView, o: number) => (min < 0 ? v.getInt32(o, littleEndian) : v.getUint32(o, littleEndian)),
  }[size as 1 | 2 | 4];
  return new BaseCodec<number>({
    size,
    align: size,
    write(view, offset, value) {
      if (!Number.isInteger(value) || value < min || value > max) {
        throw new CodecError(`${String(value)} is not a valid ${name}`);
      }
      set(view, offset, value);
    },
    read: get,
  });
}

export const u8 = integer("u8", 1, 0, 0xff, hostLittleEndian);
export const u16 = integer("u16", 2, 0, 0xffff, hostLittleEndian);
export const u32 = integer("u32", 4, 0, 0xffffffff, hostLittleEndian);
export const i32 = integer("i32", 4, -0x80000000, 0x7fffffff, hostLittleEndian);
/** A __be16: the number is stored most significant byte first (ports, ethertypes). */
export const be16 = integer("be16", 2, 0, 0xffff, false);
/** A __be32: the number is stored most significant byte first. */
export const be32 = integer("be32", 4, 0, 0xffffffff, false);

export const u64: Codec<bigint> = new BaseCodec<bigint>({
  size: 8,
  align: 8,
  write(view, offset, value) {
    if (typeof value !== "bigint" || value < 0n || value > 0xffffffffffffffffn) {
      throw new CodecError(`${String(value)} is not a valid u64 (a bigint)`);
    }
    view.setBigUint64(offset, value, hostLittleEndian);
  },
  read: (view, offset) => view.getBigUint64(offset, hostLittleEndian),
});

const ipv4Pattern = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/** An IPv4 address as a dotted quad, stored in network order like `__be32 saddr`. */
export const ipv4: Codec<string> = new BaseCodec<string>({
  size: 4,
  align: 4,
  write(view, offset, value) {
    const match = typeof value === "string" ? ipv4Pattern.exec(value) : null;
    const octets = match?.slice(1).map(Number);
    if (!octets || octets.some((octet) => octet > 255)) {
      throw new CodecError(`${JSON.stringify(value)} is not an IPv4 address`);
    }
    octets.forEach((octet, i) => view.setUint8(offset + i, octet));
  },
  read: (view, offset) => [0, 1, 2, 3].map((i) => view.getUint8(offset + i)).join("."),
});

const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** An Ethernet address "aa:bb:cc:dd:ee:ff" as 6 bytes (unsigned char[ETH_ALEN]). */
export const mac: Codec<string> = new BaseCodec<string>({
  size: 6,
  align: 1,
  write(view, offset, value) {
    if (typeof value !== "string" || !macPattern.test(value)) {
      throw new CodecError(`${JSON.stringify(value)} is not a MAC address`);
    }
    value.split(":").forEach((octet, i) => view.setUint8(offset + i, Number.parseInt(octet, 16)));
  },
  read: (view, offset) =>
    Array.from({ length: 6 }, (_, i) => view.getUint8(offset + i).toString(16).padStart(2, "0")).join(":"),
});

/** Raw bytes of a fixed length (a `__u8 data[n]` field, or an opaque key). */
export function bytes(length: number): Codec<Uint8Array> {
  checkLength("bytes", length);
  return new BaseCodec<Uint8Array>({
    size: length,
    align: 1,
    write(view, offset, value) {
      if (!(value instanceof Uint8Array) || value.length !== length) {
        throw new CodecError(`expected ${length} bytes, got ${value instanceof Uint8Array ? value.length : typeof value}`);
      }
      new Uint8Array(view.buffer, view.byteOffset + offset, length).set(value);
    },
    read: (view, offset) => new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + length)),
  });
}

/** Explicit padding: always written as zeros and left out of the decoded value. */
export class PadCodec extends BaseCodec<undefined> {
  readonly padding = true;

  constructor(length: number) {
    checkLength("pad", length);
    super({ size: length, align: 1, write: () => {}, read: () => undefined });
  }
}

export function pad(length: number): PadCodec {
  return new PadCodec(length);
}

/** A fixed-length C array `T name[n]`; the value must have exactly n elements. */
export function array<T>(element: Codec<T>, length: number): Codec<T[]> {
  checkLength("array", length);
  return new BaseCodec<T[]>({
    size: element.size * length,
    align: element.align,
    write(view, offset, value) {
      if (!Array.isArray(value) || value.length !== length) {
        throw new CodecError(`expected an array of ${length}, got ${Array.isArray(value) ? value.length : typeof value}`);
      }
      value.forEach((item, i) => {
        try {
          element.write(view, offset + i * element.size, item);
        } catch (error) {
          throw error instanceof CodecError ? error.within(`[${i}]`) : error;
        }
      });
    },
    read: (view, offset) => Array.from({ length }, (_, i) => element.read(view, offset + i * element.size)),
  });
}

type Fields = Record<string, Codec<unknown>>;

/** The decoded value of a struct: every field except explicit padding. */
export type StructValue<F extends Fields> = {
  [K in keyof F as F[K] extends PadCodec ? never : K]: F[K] extends Codec<infer T> ? T : never;
};

export interface StructField {
  readonly name: string;
  readonly offset: number;
  readonly codec: Codec<unknown>;
}

export class StructCodec<F extends Fields> extends BaseCodec<StructValue<F>> {
  /** Fields in declaration order with their C offsets (padding fields included). */
  readonly fields: readonly StructField[];

  constructor(definition: F) {
    const fields: StructField[] = [];
    let size = 0;
    let align = 1;
    for (const [name, codec] of Object.entries(definition)) {
      size = alignUp(size, codec.align);
      fields.push({ name, offset: size, codec });
      size += codec.size;
      align = Math.max(align, codec.align);
    }
    size = alignUp(size, align);
    const valueFields = fields.filter((field) => !(field.codec instanceof PadCodec));
    super({
      size,
      align,
      write(view, offset, value) {
        if (typeof value !== "object" || value === null) throw new CodecError(`expected an object, got ${String(value)}`);
        // Implicit and explicit padding must be zero: hash map keys compare all bytes.
        new Uint8Array(view.buffer, view.byteOffset + offset, size).fill(0);
        const record = value as Record<string, unknown>;
        for (const field of valueFields) {
          if (!(field.name in record)) throw new CodecError("missing field", field.name);
          try {
            field.codec.write(view, offset + field.offset, record[field.name]);
          } catch (error) {
            throw error instanceof CodecError ? error.within(field.name) : error;
          }
        }
      },
      read(view, offset) {
        const value: Record<string, unknown> = {};
        for (const field of valueFields) value[field.name] = field.codec.read(view, offset + field.offset);
        return value as StructValue<F>;
      },
    });
    this.fields = fields;
  }

  offsetOf(name: keyof F & string): number {
    const field = this.fields.find((f) => f.name === name);
    if (!field) throw new CodecError(`no field ${name}`);
    return field.offset;
  }
}

/** A C struct: fields laid out in order with natural alignment, size rounded to the largest alignment. */
export function struct<F extends Fields>(definition: F): StructCodec<F> {
  return new StructCodec(definition);
}

/**
 * The value of a per-CPU map as user space sees it: the kernel hands over one value per
 * possible CPU (not just online ones), each in a slot rounded up to 8 bytes.
 */
export class PerCpuCodec<T> extends BaseCodec<T[]> {
  readonly element: Codec<T>;
  readonly cpus: number;
  /** Bytes per CPU: the element size rounded up to 8. */
  readonly slotSize: number;

  constructor(element: Codec<T>, cpus: number) {
    const slotSize = alignUp(element.size, 8);
    super({
      size: slotSize * cpus,
      align: 8,
      write(view, offset, values) {
        if (!Array.isArray(values) || values.length !== cpus) {
          const got = Array.isArray(values) ? values.length : typeof values;
          throw new CodecError(`expected one value per possible CPU (${cpus}), got ${got}`);
        }
        new Uint8Array(view.buffer, view.byteOffset + offset, slotSize * cpus).fill(0);
        values.forEach((value, cpu) => {
          try {
            element.write(view, offset + cpu * slotSize, value);
          } catch (error) {
            throw error instanceof CodecError ? error.within(`[cpu ${cpu}]`) : error;
          }
        });
      },
      read: (view, offset) => Array.from({ length: cpus }, (_, cpu) => element.read(view, offset + cpu * slotSize)),
    });
    this.element = element;
    this.cpus = cpus;
    this.slotSize = slotSize;
  }
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

function checkLength(what: string, length: number): void {
  if (!Number.isInteger(length) || length < 0) throw new CodecError(`${what}: invalid length ${length}`);
}
