/**
 * The libbpf layer against the real kernel: loading objects, typed maps of every kind the
 * datapath uses, pinning, BPF_PROG_TEST_RUN and the ring buffer. Attaching to interfaces and
 * cgroups is in bpf-attach.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  BpfError,
  BpfMap,
  BpfObject,
  bytes,
  ipv4,
  mac,
  mapInfo,
  pad,
  perCpu,
  possibleCpus,
  RingBufferReader,
  setBpfLogger,
  struct,
  testRun,
  u16,
  u32,
  u64,
  u8,
  be16,
  type Infer,
} from "../../src/datapath/bpf/index.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const objects = join(import.meta.dir, "../../build/test-bpf");
const objectBytes = (name: string) => readFileSync(join(objects, `${name}.o`));
const prefix = `tbpf${process.pid % 1000}`;
const pinDir = `/sys/fs/bpf/${prefix}`;

const Index = u32;
const Traffic = struct({ packets: u64, bytes: u64 });
const EndpointKey = struct({ ip: ipv4 });
const EndpointInfo = struct({ ifindex: u32, lxcId: u16, flags: u16, mac: mac, nodeMac: mac, secId: u32, pad: pad(4) });
const Prefix = struct({ prefixlen: u32, addr: ipv4 });
const VerdictEvent = struct({ saddr: ipv4, daddr: ipv4, protocol: u8, dropped: u8, dport: be16, len: u32 });

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

/** bpffs must be mounted at /sys/fs/bpf for pinning (the agent mounts it the same way). */
function ensureBpffs(): void {
  const type = Bun.spawnSync(["stat", "-f", "-c", "%T", "/sys/fs/bpf"]).stdout.toString().trim();
  if (type !== "bpf_fs") {
    const mount = Bun.spawnSync(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"]);
    if (mount.exitCode !== 0) throw new Error(`mount bpffs: ${mount.stderr.toString()}`);
  }
}

function endpoint(n: number): Infer<typeof EndpointInfo> {
  return {
    ifindex: 100 + n,
    lxcId: n,
    flags: n % 2,
    mac: `02:00:00:00:00:${n.toString(16).padStart(2, "0")}`,
    nodeMac: "02:ff:ff:ff:ff:01",
    secId: 256 + n,
  };
}

/** Ethernet + IPv4 + TCP (20-byte headers, checksums left zero: the program does not check them). */
function tcpPacket(source: string, destination: string, destinationPort: number): Uint8Array {
  const packet = new Uint8Array(14 + 20 + 20);
  const view = new DataView(packet.buffer);
  packet.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  view.setUint16(12, 0x0800);
  view.setUint8(14, 0x45);
  view.setUint16(16, 40);
  view.setUint8(22, 64);
  view.setUint8(23, 6);
  packet.set(ipv4.encode(source), 26);
  packet.set(ipv4.encode(destination), 30);
  view.setUint16(34, 40000);
  view.setUint16(36, destinationPort);
  view.setUint8(46, 5 << 4);
  view.setUint8(47, 0x02); // SYN
  return packet;
}

function arpPacket(): Uint8Array {
  const packet = new Uint8Array(42);
  new DataView(packet.buffer).setUint16(12, 0x0806);
  return packet;
}

describePrivileged("libbpf objects, maps, test runs and ring buffers", () => {
  const logged: string[] = [];
  const opened: BpfObject[] = [];
  const open = (name: string, pinRoot?: string) => {
    const object = BpfObject.open(objectBytes(name), { name, ...(pinRoot ? { pinRoot } : {}) });
    opened.push(object);
    return object;
  };

  beforeAll(() => {
    setBpfLogger((level, message) => logged.push(`${level}: ${message}`));
    ensureBpffs();
    rmSync(pinDir, { recursive: true, force: true });
    mkdirSync(pinDir);
  });

  afterAll(() => {
    for (const object of opened) object.close();
    rmSync(pinDir, { recursive: true, force: true });
    setBpfLogger(null);
  });

  describe("objects", () => {
    test("open from bytes lists maps and programs before load", () => {
      const object = open("counter");
      expect(object.maps().map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries])).toEqual([
        ["traffic", "array", 4, 16, 3],
        ["packets_per_cpu", "percpu_array", 4, 8, 3],
        ["traffic_per_cpu", "percpu_hash", 4, 16, 16],
        ["prefixes", "lpm_trie", 8, 4, 64],
        ["endpoints", "hash", 4, 28, 256],
      ]);
      expect(object.programs().map((p) => [p.name, p.sectionName, p.type])).toEqual([
        ["count_ingress", "tc", "sched_cls"],
        ["count_egress", "tc", "sched_cls"],
        ["count_cgroup_egress", "cgroup_skb/egress", "cgroup_skb"],
      ]);
      expect(() => object.map("endpoints").fd).toThrow(BpfError);
      expect(() => object.map("nope")).toThrow(/find map "nope" in bpf object "counter": ENOENT/);
      expect(() => object.program("nope")).toThrow(BpfError);
      object.close();
    });

    test("max entries set before load is what the kernel creates", () => {
      const object = open("counter", pinDir);
      object.map("endpoints").setMaxEntries(1000);
      object.load();
      expect(object.map("endpoints").maxEntries).toBe(1000);
      const info = mapInfo(object.map("endpoints").fd);
      expect(info).toMatchObject({ name: "endpoints", type: "hash", keySize: 4, valueSize: 28, maxEntries: 1000 });
      expect(() => object.map("endpoints").setMaxEntries(5)).toThrow(
        /set max entries of map "endpoints" of bpf object "counter"/,
      );
      expect(object.program("count_ingress").fd).toBeGreaterThan(0);
      object.close();
    });

    test("a program the verifier rejects fails load with the verifier's reason", () => {
      const object = open("invalid");
      let error: unknown;
      try {
        object.load();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(BpfError);
      const bpfError = error as BpfError;
      expect(bpfError.errno).toBe(13);
      expect(bpfError.code).toBe("EACCES");
      expect(bpfError.operation).toBe('load bpf object "invalid"');
      expect(bpfError.message).toStartWith('load bpf object "invalid": EACCES (permission denied):');
      expect(bpfError.message).toContain("prog 'unchecked_lookup': BPF program load failed");
      expect(bpfError.message).toContain("invalid mem access 'map_value_or_null'");
      expect(bpfError.log.some((line) => line.includes("-- BEGIN PROG LOAD LOG --"))).toBe(true);
      // The logger hook got the lines too, at debug level: the error carries them.
      expect(logged.some((line) => line.startsWith("debug: ") && line.includes("invalid mem access"))).toBe(true);
      expect(logged.some((line) => line.startsWith("warn: ") && line.includes("invalid mem access"))).toBe(false);
      object.close();
    });

    test("garbage bytes fail to open with a BpfError", () => {
      expect(() => BpfObject.open(new Uint8Array([1, 2, 3, 4]), { name: "garbage" })).toThrow(/open bpf object "garbage"/);
    });

    test("close is idempotent and handles refuse use afterwards", () => {
      const object = open("counter", pinDir);
      object.load();
      const map = new BpfMap(object.map("endpoints"), EndpointKey, EndpointInfo);
      object.close();
      object.close();
      expect(object.closed).toBe(true);
      expect(() => object.map("traffic").fd).toThrow(/EBADF/);
      expect(() => map.lookup({ ip: "10.0.0.1" })).toThrow(/EBADF/);
    });
  });

  describe("maps", () => {
    let counter: BpfObject;
    beforeAll(() => {
      counter = open("counter", pinDir);
      counter.map("endpoints").setMaxEntries(1000); // room for more than one batch chunk
      counter.load();
    });

    test("codecs must match the kernel's key and value sizes", () => {
      expect(() => new BpfMap(counter.map("endpoints"), EndpointKey, u32)).toThrow(
        /value codec is 4 bytes, the map's values are 28/,
      );
      expect(() => new BpfMap(counter.map("endpoints"), u64, EndpointInfo)).toThrow(/key codec is 8 bytes/);
      expect(() => new BpfMap(counter.map("packets_per_cpu"), Index, u64)).toThrow(/needs a perCpu/);
      expect(() => new BpfMap(counter.map("traffic"), Index, perCpu(Traffic))).toThrow(/not per-CPU/);
    });

    test("hash: update, lookup, flags, delete", () => {
      const endpoints = new BpfMap(counter.map("endpoints"), EndpointKey, EndpointInfo);
      endpoints.clear();
      expect(endpoints.type).toBe("hash");
      expect(endpoints.lookup({ ip: "10.0.0.1" })).toBeUndefined();
      endpoints.update({ ip: "10.0.0.1" }, endpoint(1));
      expect(endpoints.lookup({ ip: "10.0.0.1" })).toEqual(endpoint(1));
      expect(() => endpoints.update({ ip: "10.0.0.1" }, endpoint(2), "noexist")).toThrow(/EEXIST/);
      expect(() => endpoints.update({ ip: "10.0.0.2" }, endpoint(2), "exist")).toThrow(/ENOENT/);
      endpoints.update({ ip: "10.0.0.1" }, endpoint(3), "exist");
      expect(endpoints.lookup({ ip: "10.0.0.1" })?.lxcId).toBe(3);
      expect(endpoints.delete({ ip: "10.0.0.1" })).toBe(true);
      expect(endpoints.delete({ ip: "10.0.0.1" })).toBe(false);
    });

    test("hash: iteration, batch lookup and update, clear", () => {
      const endpoints = new BpfMap(counter.map("endpoints"), EndpointKey, EndpointInfo);
      endpoints.clear();
      const wanted = Array.from({ length: 600 }, (_, n) => [{ ip: `10.1.${n >> 8}.${n & 255}` }, endpoint(n % 200)] as const);
      endpoints.batchUpdate(wanted);
      const byIp = (entries: Array<readonly [{ ip: string }, unknown]>) =>
        new Map(entries.map(([key, value]) => [key.ip, value]));
      expect(byIp([...endpoints.entries()])).toEqual(byIp(wanted));
      expect(new Set([...endpoints.keys()].map((k) => k.ip))).toEqual(new Set(wanted.map(([k]) => k.ip)));
      const batch = endpoints.batchLookup();
      expect(batch.length).toBe(600);
      expect(byIp(batch)).toEqual(byIp(wanted));
      expect(endpoints.count()).toBe(600);
      endpoints.clear();
      expect(endpoints.count()).toBe(0);
      expect([...endpoints.keys()]).toEqual([]);
      expect(endpoints.batchLookup()).toEqual([]);
    });

    test("hash: iteration survives entries vanishing meanwhile", () => {
      const endpoints = new BpfMap(counter.map("endpoints"), EndpointKey, EndpointInfo);
      endpoints.clear();
      const ips = Array.from({ length: 100 }, (_, n) => `10.2.0.${n}`);
      endpoints.batchUpdate(ips.map((ip, n) => [{ ip }, endpoint(n)] as const));

      // The caller deletes each entry it is given (a garbage collection pass).
      const visited: string[] = [];
      for (const [key] of endpoints.entries()) {
        visited.push(key.ip);
        endpoints.delete(key);
      }
      expect(visited.sort()).toEqual([...ips].sort());
      expect([...endpoints.keys()]).toEqual([]);

      // Someone else deletes entries we have not reached yet, and ones we are positioned on.
      endpoints.batchUpdate(ips.map((ip, n) => [{ ip }, endpoint(n)] as const));
      const seen = new Set<string>();
      let step = 0;
      const all = [...endpoints.keys()].map((k) => k.ip);
      for (const [key] of endpoints.entries()) {
        expect(seen.has(key.ip)).toBe(false);
        seen.add(key.ip);
        step++;
        if (step % 10 === 0) for (const ip of all.slice(step, step + 3)) endpoints.delete({ ip });
        if (step === 50) endpoints.delete(key);
      }
      for (const [key] of endpoints.entries()) expect(seen.has(key.ip)).toBe(true);
    });

    test("array: every index exists, delete is refused, clear zeroes", () => {
      const traffic = new BpfMap(counter.map("traffic"), Index, Traffic);
      traffic.update(2, { packets: 5n, bytes: 500n });
      expect(traffic.lookup(2)).toEqual({ packets: 5n, bytes: 500n });
      expect(traffic.lookup(3)).toBeUndefined();
      expect(() => traffic.delete(0)).toThrow(/delete from map "traffic": EINVAL/);
      expect([...traffic.keys()]).toEqual([0, 1, 2]);
      expect(traffic.batchLookup().map(([k]) => k)).toEqual([0, 1, 2]);
      traffic.batchUpdate([
        [0, { packets: 1n, bytes: 2n }],
        [1, { packets: 3n, bytes: 4n }],
      ]);
      expect([...traffic.entries()]).toEqual([
        [0, { packets: 1n, bytes: 2n }],
        [1, { packets: 3n, bytes: 4n }],
        [2, { packets: 5n, bytes: 500n }],
      ]);
      traffic.clear();
      expect(traffic.batchLookup().every(([, v]) => v.packets === 0n && v.bytes === 0n)).toBe(true);
    });

    test("per-CPU array and hash: one value per possible CPU", () => {
      const cpus = possibleCpus();
      expect(cpus).toBeGreaterThan(0);
      const perCpuPackets = new BpfMap(counter.map("packets_per_cpu"), Index, perCpu(u64));
      const values = Array.from({ length: cpus }, (_, cpu) => BigInt(cpu + 1));
      perCpuPackets.update(1, values);
      expect(perCpuPackets.lookup(1)).toEqual(values);
      expect(perCpuPackets.batchLookup()[1]).toEqual([1, values]);
      perCpuPackets.clear();
      expect(perCpuPackets.lookup(1)).toEqual(values.map(() => 0n));

      const perCpuTraffic = new BpfMap(counter.map("traffic_per_cpu"), Index, perCpu(Traffic));
      const traffic = (n: number) => Array.from({ length: cpus }, (_, cpu) => ({ packets: BigInt(n), bytes: BigInt(cpu) }));
      perCpuTraffic.batchUpdate([
        [7, traffic(7)],
        [9, traffic(9)],
      ]);
      expect(perCpuTraffic.lookup(9)).toEqual(traffic(9));
      expect(new Map(perCpuTraffic.batchLookup())).toEqual(
        new Map([
          [7, traffic(7)],
          [9, traffic(9)],
        ]),
      );
      expect(() => perCpuTraffic.update(1, traffic(1).slice(1))).toThrow(/one value per possible CPU/);
      perCpuTraffic.clear();
      expect([...perCpuTraffic.keys()]).toEqual([]);
    });

    test("LPM trie: longest prefix match, iteration, batch falls back to single calls", () => {
      const prefixes = new BpfMap(counter.map("prefixes"), Prefix, u32);
      expect(prefixes.type).toBe("lpm_trie");
      prefixes.batchUpdate([
        [{ prefixlen: 8, addr: "10.0.0.0" }, 8],
        [{ prefixlen: 16, addr: "10.1.0.0" }, 16],
      ]);
      prefixes.update({ prefixlen: 32, addr: "10.1.2.3" }, 32);
      expect(prefixes.lookup({ prefixlen: 32, addr: "10.1.2.3" })).toBe(32);
      expect(prefixes.lookup({ prefixlen: 32, addr: "10.1.9.9" })).toBe(16);
      expect(prefixes.lookup({ prefixlen: 32, addr: "10.200.0.1" })).toBe(8);
      expect(prefixes.lookup({ prefixlen: 32, addr: "11.0.0.1" })).toBeUndefined();
      const all = prefixes.batchLookup().map(([key, value]) => `${key.addr}/${key.prefixlen}=${value}`);
      expect(all.sort()).toEqual(["10.0.0.0/8=8", "10.1.0.0/16=16", "10.1.2.3/32=32"]);
      expect(prefixes.count()).toBe(3);
      expect(prefixes.delete({ prefixlen: 16, addr: "10.1.0.0" })).toBe(true);
      expect(prefixes.lookup({ prefixlen: 32, addr: "10.1.9.9" })).toBe(8);
      prefixes.clear();
      expect([...prefixes.entries()]).toEqual([]);
    });

    test("pin a map and open it from its pin", () => {
      const endpoints = new BpfMap(counter.map("endpoints"), EndpointKey, EndpointInfo);
      endpoints.clear();
      endpoints.update({ ip: "10.3.0.1" }, endpoint(1));
      const path = join(pinDir, "endpoints_copy");
      endpoints.pin(path);
      const pinned = BpfMap.openPinned(path, EndpointKey, EndpointInfo);
      expect(pinned.lookup({ ip: "10.3.0.1" })).toEqual(endpoint(1));
      pinned.update({ ip: "10.3.0.2" }, endpoint(2));
      expect(endpoints.lookup({ ip: "10.3.0.2" })).toEqual(endpoint(2));
      pinned.close();
      pinned.close();
      expect(() => pinned.lookup({ ip: "10.3.0.1" })).toThrow(/EBADF/);
      expect(() => BpfMap.openPinned(path, EndpointKey, u32)).toThrow(/value codec is 4 bytes/);
      expect(() => BpfMap.openPinned(join(pinDir, "missing"), EndpointKey, EndpointInfo)).toThrow(/ENOENT/);
      rmSync(path);
    });

    test("maps pinned by name are reused by a second load with the same pin root", () => {
      const root = join(pinDir, "reuse");
      mkdirSync(root);
      const first = open("counter", root);
      first.load();
      expect(first.map("traffic").pinPath).toBe(join(root, "traffic"));
      new BpfMap(first.map("traffic"), Index, Traffic).update(1, { packets: 42n, bytes: 4200n });

      const second = open("counter", root);
      second.load();
      const shared = new BpfMap(second.map("traffic"), Index, Traffic);
      expect(shared.lookup(1)).toEqual({ packets: 42n, bytes: 4200n });
      expect(mapInfo(second.map("traffic").fd).id).toBe(mapInfo(first.map("traffic").fd).id);
      // Maps without a pinning attribute are per object.
      expect(mapInfo(second.map("endpoints").fd).id).not.toBe(mapInfo(first.map("endpoints").fd).id);

      // The pin outlives both objects and keeps the data.
      first.close();
      second.close();
      const reopened = BpfMap.openPinned(join(root, "traffic"), Index, Traffic);
      expect(reopened.lookup(1)?.packets).toBe(42n);
      reopened.close();
    });
  });

  describe("programs and the ring buffer", () => {
    let verdict: BpfObject;
    beforeAll(() => {
      verdict = open("verdict");
      verdict.load();
    });

    test("BPF_PROG_TEST_RUN verdicts follow the packet and the maps", () => {
      const program = verdict.program("verdict");
      const denied = new BpfMap(verdict.map("denied_sources"), Prefix, u32);
      denied.update({ prefixlen: 24, addr: "192.168.66.0" }, 1);

      const allowed = tcpPacket("10.0.0.1", "10.0.0.2", 80);
      const result = testRun(program, { data: allowed, repeat: 3 });
      expect(result.retval).toBe(TC_ACT_OK);
      expect(result.durationNs).toBeGreaterThanOrEqual(0);
      expect(result.data).toEqual(allowed);

      expect(testRun(program, { data: tcpPacket("10.0.0.1", "10.0.0.2", 8080) }).retval).toBe(TC_ACT_SHOT);
      expect(testRun(program, { data: tcpPacket("192.168.66.7", "10.0.0.2", 80) }).retval).toBe(TC_ACT_SHOT);
      expect(testRun(program, { data: tcpPacket("192.168.67.7", "10.0.0.2", 80) }).retval).toBe(TC_ACT_OK);
      expect(testRun(program, { data: arpPacket() }).retval).toBe(TC_ACT_OK);
      expect(() => testRun(program, { data: new Uint8Array(4) })).toThrow(/test run of program "verdict": EINVAL/);
    });

    test("test runs count through the per-CPU map", () => {
      const counter = open("counter", pinDir);
      counter.load();
      const perCpuPackets = new BpfMap(counter.map("packets_per_cpu"), Index, perCpu(u64));
      perCpuPackets.clear();
      testRun(counter.program("count_egress"), { data: tcpPacket("10.0.0.1", "10.0.0.2", 80), repeat: 5 });
      const perCpuCounts = perCpuPackets.lookup(1)!;
      expect(perCpuCounts.length).toBe(possibleCpus());
      expect(perCpuCounts.reduce((a, b) => a + b, 0n)).toBe(5n);
    });

    test("records written by the program are read back from the ring buffer", () => {
      const records: Array<Infer<typeof VerdictEvent>> = [];
      const reader = new RingBufferReader(verdict.map("events"), (record) => records.push(VerdictEvent.decode(record)), {
        pollIntervalMs: 10_000,
      });
      try {
        reader.consumeNow(); // records of earlier tests
        records.length = 0;
        const program = verdict.program("verdict");
        testRun(program, { data: tcpPacket("10.9.0.1", "10.9.0.2", 8080) });
        testRun(program, { data: tcpPacket("10.9.0.3", "10.9.0.4", 443) });
        testRun(program, { data: arpPacket() }); // not IPv4: no record
        expect(reader.consumeNow()).toBe(2);
        expect(records).toEqual([
          { saddr: "10.9.0.1", daddr: "10.9.0.2", protocol: 6, dropped: 1, dport: 8080, len: 54 },
          { saddr: "10.9.0.3", daddr: "10.9.0.4", protocol: 6, dropped: 0, dport: 443, len: 54 },
        ]);
        expect(reader.consumeNow()).toBe(0);
        expect(reader.stats.records).toBeGreaterThanOrEqual(2);
      } finally {
        reader.close();
        reader.close();
      }
      expect(() => reader.consumeNow()).toThrow(/closed/);
    });

    test("the ring buffer timer delivers records, and handler errors surface", async () => {
      const seen: Uint8Array[] = [];
      const reader = new RingBufferReader(verdict.map("events"), (record) => seen.push(record), { pollIntervalMs: 5 });
      try {
        testRun(verdict.program("verdict"), { data: tcpPacket("10.9.1.1", "10.9.1.2", 22) });
        const deadline = Date.now() + 2000;
        while (!seen.some((r) => ipv4.decode(r) === "10.9.1.1") && Date.now() < deadline) await Bun.sleep(5);
        expect(seen.some((r) => ipv4.decode(r) === "10.9.1.1")).toBe(true);
      } finally {
        reader.close();
      }

      const failing = new RingBufferReader(
        verdict.map("events"),
        () => {
          throw new Error("handler failed");
        },
        { pollIntervalMs: 10_000 },
      );
      try {
        testRun(verdict.program("verdict"), { data: tcpPacket("10.9.2.1", "10.9.2.2", 22) });
        expect(() => failing.consumeNow()).toThrow("handler failed");
      } finally {
        failing.close();
      }
    });

    test("a ring buffer reader on a map that is not a ring buffer is refused", () => {
      expect(() => new RingBufferReader(verdict.map("denied_sources"), () => {})).toThrow(/open ring buffer "denied_sources"/);
    });
  });

  test("raw bytes codecs work for opaque keys", () => {
    const object = open("counter", pinDir);
    object.load();
    const raw = new BpfMap(object.map("endpoints"), bytes(4), bytes(28));
    raw.update(Uint8Array.of(10, 0, 0, 9), new Uint8Array(28).fill(7));
    expect([...raw.lookup(Uint8Array.of(10, 0, 0, 9))!]).toEqual(new Array(28).fill(7));
    const typed = new BpfMap(object.map("endpoints"), EndpointKey, bytes(28));
    expect(typed.lookup({ ip: "10.0.0.9" })).toBeDefined();
  });
});
