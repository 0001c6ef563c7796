import { describe, expect, test } from "bun:test";
import {
  array,
  be16,
  be32,
  bytes,
  CodecError,
  i32,
  type Infer,
  ipv4,
  mac,
  pad,
  PerCpuCodec,
  struct,
  u16,
  u32,
  u64,
  u8,
} from "../../src/datapath/bpf/codec.ts";

const EndpointKey = struct({ ip: ipv4 });
const EndpointInfo = struct({
  ifindex: u32,
  lxcId: u16,
  flags: u16,
  mac: mac,
  nodeMac: mac,
  secId: u32,
  pad: pad(4),
});

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("struct layout", () => {
  test("endpoint info matches the C struct (28 bytes, no implicit padding)", () => {
    expect(EndpointInfo.size).toBe(28);
    expect(EndpointInfo.align).toBe(4);
    expect(EndpointInfo.fields.map((f) => [f.name, f.offset])).toEqual([
      ["ifindex", 0],
      ["lxcId", 4],
      ["flags", 6],
      ["mac", 8],
      ["nodeMac", 14],
      ["secId", 20],
      ["pad", 24],
    ]);
  });

  test("fields are aligned to their natural alignment and the size to the largest", () => {
    const S = struct({ a: u8, b: u64, c: u16, d: u8, e: u32, f: u8 });
    expect(S.fields.map((f) => f.offset)).toEqual([0, 8, 16, 18, 20, 24]);
    expect(S.size).toBe(32);
    expect(S.align).toBe(8);
  });

  test("nested structs and arrays keep their own alignment", () => {
    const Inner = struct({ x: u16, y: u8 });
    expect(Inner.size).toBe(4);
    const Outer = struct({ tag: u8, inner: Inner, list: array(u32, 3), last: u8 });
    expect(Outer.fields.map((f) => f.offset)).toEqual([0, 2, 8, 20]);
    expect(Outer.size).toBe(24);
    expect(Outer.offsetOf("list")).toBe(8);
  });

  test("explicit padding and byte arrays have alignment 1", () => {
    const S = struct({ a: u8, p: pad(3), b: bytes(5) });
    expect(S.fields.map((f) => f.offset)).toEqual([0, 1, 4]);
    expect(S.size).toBe(9);
  });

  test("the decoded value leaves out padding; Infer gives its type", () => {
    const info: Infer<typeof EndpointInfo> = {
      ifindex: 7,
      lxcId: 513,
      flags: 3,
      mac: "aa:bb:cc:dd:ee:0f",
      nodeMac: "02:00:00:00:00:01",
      secId: 0xdeadbeef,
    };
    const encoded = EndpointInfo.encode(info);
    expect(encoded.length).toBe(28);
    expect(EndpointInfo.decode(encoded)).toEqual(info);
    expect(Object.keys(EndpointInfo.decode(encoded))).not.toContain("pad");
  });
});

describe("byte order", () => {
  test("u16/u32/u64 are host order (little-endian here)", () => {
    expect(hex(u16.encode(0x1234))).toBe("3412");
    expect(hex(u32.encode(0x12345678))).toBe("78563412");
    expect(hex(u64.encode(0x0102030405060708n))).toBe("0807060504030201");
    expect(hex(i32.encode(-2))).toBe("feffffff");
  });

  test("be16/be32 are network order", () => {
    expect(hex(be16.encode(8080))).toBe("1f90");
    expect(be16.decode(Uint8Array.of(0x1f, 0x90))).toBe(8080);
    expect(hex(be32.encode(0x0a000001))).toBe("0a000001");
    expect(be32.decode(Uint8Array.of(0xc0, 0xa8, 0, 1))).toBe(0xc0a80001);
  });

  test("ipv4 is four bytes in network order", () => {
    expect(hex(ipv4.encode("10.0.0.1"))).toBe("0a000001");
    expect(hex(EndpointKey.encode({ ip: "192.168.1.254" }))).toBe("c0a801fe");
    expect(ipv4.decode(Uint8Array.of(172, 16, 0, 9))).toBe("172.16.0.9");
    expect(ipv4.decode(ipv4.encode("255.255.255.255"))).toBe("255.255.255.255");
    expect(ipv4.decode(ipv4.encode("0.0.0.0"))).toBe("0.0.0.0");
  });

  test("mac round-trips in lower case", () => {
    expect(hex(mac.encode("AA:bb:0C:dd:ee:ff"))).toBe("aabb0cddeeff");
    expect(mac.decode(mac.encode("AA:bb:0C:dd:ee:ff"))).toBe("aa:bb:0c:dd:ee:ff");
  });
});

describe("round trips", () => {
  test("u64 covers the full range", () => {
    for (const value of [0n, 1n, 0xffffffffn, 0xffffffffffffffffn]) expect(u64.decode(u64.encode(value))).toBe(value);
  });

  test("integer limits", () => {
    expect(u8.decode(u8.encode(255))).toBe(255);
    expect(u16.decode(u16.encode(65535))).toBe(65535);
    expect(u32.decode(u32.encode(0xffffffff))).toBe(0xffffffff);
    expect(i32.decode(i32.encode(-0x80000000))).toBe(-0x80000000);
  });

  test("arrays and bytes", () => {
    const A = array(u16, 3);
    expect(A.decode(A.encode([1, 2, 3]))).toEqual([1, 2, 3]);
    const B = bytes(3);
    const decoded = B.decode(Uint8Array.of(9, 8, 7));
    expect([...decoded]).toEqual([9, 8, 7]);
  });

  test("decode at an offset, and of a subarray", () => {
    const buffer = new Uint8Array(40);
    buffer.set(EndpointKey.encode({ ip: "1.2.3.4" }), 12);
    expect(EndpointKey.decode(buffer, 12)).toEqual({ ip: "1.2.3.4" });
    expect(EndpointKey.decode(buffer.subarray(12, 16))).toEqual({ ip: "1.2.3.4" });
  });

  test("decoded bytes are a copy", () => {
    const source = Uint8Array.of(1, 2);
    const decoded = bytes(2).decode(source);
    source[0] = 99;
    expect(decoded[0]).toBe(1);
  });

  test("implicit padding is zero even when encoded into a dirty buffer", () => {
    const S = struct({ a: u8, b: u32 });
    const view = new DataView(new Uint8Array(8).fill(0xff).buffer);
    S.write(view, 0, { a: 1, b: 2 });
    expect(hex(new Uint8Array(view.buffer))).toBe("0100000002000000");
  });

  test("per-CPU values: one slot per CPU, each rounded up to 8 bytes", () => {
    const Counter = new PerCpuCodec(u32, 3);
    expect(Counter.slotSize).toBe(8);
    expect(Counter.size).toBe(24);
    const encoded = Counter.encode([1, 2, 3]);
    expect(hex(encoded)).toBe("010000000000000002000000000000000300000000000000");
    expect(Counter.decode(encoded)).toEqual([1, 2, 3]);
    const Traffic = new PerCpuCodec(struct({ packets: u64, bytes: u64 }), 2);
    expect(Traffic.size).toBe(32);
  });
});

describe("bad input", () => {
  const bad = (fn: () => unknown, message: RegExp) => {
    expect(fn).toThrow(CodecError);
    expect(fn).toThrow(message);
  };

  test("IPv4 strings", () => {
    for (const value of ["10.0.0", "10.0.0.256", "10.0.0.1.2", "a.b.c.d", "010.0.0.1", " 10.0.0.1", "", "::1"]) {
      bad(() => ipv4.encode(value), /not an IPv4 address/);
    }
    bad(() => ipv4.encode(167772161 as unknown as string), /not an IPv4 address/);
  });

  test("MAC strings", () => {
    for (const value of ["aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa-bb-cc-dd-ee-ff", "gg:bb:cc:dd:ee:ff", "a:b:c:d:e:f"]) {
      bad(() => mac.encode(value), /not a MAC address/);
    }
  });

  test("integers out of range or not integers", () => {
    bad(() => u8.encode(256), /not a valid u8/);
    bad(() => u16.encode(-1), /not a valid u16/);
    bad(() => u32.encode(1.5), /not a valid u32/);
    bad(() => u32.encode(2 ** 32), /not a valid u32/);
    bad(() => i32.encode(2 ** 31), /not a valid i32/);
    bad(() => be16.encode(70000), /not a valid be16/);
    bad(() => u64.encode(1 as unknown as bigint), /not a valid u64/);
    bad(() => u64.encode(-1n), /not a valid u64/);
    bad(() => u64.encode(1n << 64n), /not a valid u64/);
  });

  test("wrong sizes", () => {
    bad(() => bytes(4).encode(new Uint8Array(3)), /expected 4 bytes, got 3/);
    bad(() => array(u8, 2).encode([1, 2, 3]), /expected an array of 2, got 3/);
    bad(() => new PerCpuCodec(u64, 2).encode([1n]), /one value per possible CPU \(2\), got 1/);
    bad(() => EndpointKey.decode(new Uint8Array(3)), /need 4 bytes at offset 0, have 3/);
    bad(() => EndpointKey.decode(new Uint8Array(4), 1), /need 4 bytes at offset 1, have 4/);
  });

  test("errors name the field path", () => {
    const info = { ifindex: 1, lxcId: 2, flags: 0, mac: "nope", nodeMac: "02:00:00:00:00:01", secId: 1 };
    bad(() => EndpointInfo.encode(info), /^mac: "nope" is not a MAC address$/);
    const Nested = struct({ endpoints: array(EndpointKey, 2) });
    bad(() => Nested.encode({ endpoints: [{ ip: "1.1.1.1" }, { ip: "300.1.1.1" }] }), /^endpoints\[1\]\.ip: /);
    bad(() => EndpointKey.encode({} as never), /^ip: missing field$/);
    bad(() => EndpointKey.encode(null as never), /expected an object/);
  });
});
