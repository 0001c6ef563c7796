/**
 * RingBufferReader (mmap'ed pages read from JS) on the real cilium_events ring, against libbpf's
 * consumer: records written by bpf_lxc (BPF_PROG_TEST_RUN) are read whole, in order, none lost
 * or repeated, across many wrap-arounds of the ring, with the two readers taking turns on the
 * same ring (they share the kernel's consumer position).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { BpfMap, BpfObject, LibbpfRingBufferReader, RingBufferReader, testRun } from "../../src/datapath/bpf/index.ts";
import { EndpointInfo, EndpointKey, ENDPOINTS_MAP } from "../../src/datapath/maps/endpoints.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { NodeDatapath } from "../../src/datapath/node.ts";
import { readObject } from "../../src/datapath/objects.ts";
import { mapPinRoot, pinnedMapPath } from "../../src/datapath/pinned.ts";
import { decodeEventRecord, type EventRecord } from "../../src/hubble/parser/record.ts";
import { TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const prefix = uniquePrefix("trbr");
const octet = (process.pid % 200) + 2;

describePrivileged("RingBufferReader on the real event ring", () => {
  const namespaces = new TestNamespaces(prefix);
  const bpfRoot = `/sys/fs/bpf/${prefix}`;
  let netns: Netns;
  let datapath: NodeDatapath | undefined;
  let lxc: BpfObject | undefined;

  beforeAll(() => {
    netns = Netns.open(Netns.pathOf(namespaces.create("node")));
    rmSync(bpfRoot, { recursive: true, force: true });
    datapath = NodeDatapath.start({ bpfRoot, podCidr: `10.205.${octet}.0/24`, mtu: 1500, masquerade: false, netns, monitorAggregation: "none" });
    const endpoints = BpfMap.openPinned(pinnedMapPath(bpfRoot, ENDPOINTS_MAP), EndpointKey, EndpointInfo);
    endpoints.update({ ip4: `10.205.${octet}.10` }, { ifindex: 1, lxcId: 55, flags: 0, mac: "02:00:00:00:00:0a", nodeMac: "02:00:00:00:00:01", secIdentity: 3000 });
    endpoints.close();
    lxc = BpfObject.open(readObject("bpf_lxc"), { name: "bpf_lxc", pinRoot: mapPinRoot(bpfRoot) });
    lxc.load();
  });

  afterAll(() => {
    lxc?.close();
    datapath?.close();
    netns?.close();
    namespaces.removeAll();
    rmSync(bpfRoot, { recursive: true, force: true });
  });

  function packet(sport: number): Uint8Array {
    const data = new Uint8Array(54);
    const view = new DataView(data.buffer);
    data.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0x0a]);
    view.setUint16(12, 0x0800);
    view.setUint8(14, 0x45);
    view.setUint16(16, 40);
    view.setUint8(22, 64);
    view.setUint8(23, 17);
    data.set([10, 205, octet, 10], 26);
    data.set([198, 51, 100, 1], 30);
    view.setUint16(34, sport);
    view.setUint16(36, 53);
    view.setUint16(38, 20);
    return data;
  }

  test("records come out whole and in order across wrap-arounds, whichever reader drains", () => {
    const events = lxc!.map("cilium_events");
    const program = lxc!.program("cil_from_container");
    const seen: EventRecord[] = [];
    const collect = (bytes: Uint8Array) => seen.push(decodeEventRecord(bytes));
    const mmapReader = new RingBufferReader(events, collect, { pollIntervalMs: 3_600_000 });
    const libbpfReader = new LibbpfRingBufferReader(events, collect, { pollIntervalMs: 3_600_000 });
    const lostBefore = datapath!.eventsLost();
    try {
      mmapReader.consumeNow();
      seen.length = 0;
      // 96 rounds of up to 2,000 packets with 2 records each: ~35 MB through the 8 MiB ring.
      let expected = 0;
      for (let round = 0; round < 96; round++) {
        const runs = 500 + ((round * 577) % 1500);
        netns.run(() => testRun(program, { data: packet(1000 + round), repeat: runs }));
        expected += 2 * runs;
        const reader = round % 3 === 2 ? libbpfReader : mmapReader;
        expect(reader.consumeNow()).toBe(2 * runs);
      }
      expect(seen.length).toBe(expected);
      expect(datapath!.eventsLost()).toBe(lostBefore);
      // Every record is a whole 176-byte record of this packet: a from-endpoint then a to-stack trace.
      for (let i = 0; i < seen.length; i++) {
        const r = seen[i]!;
        expect([r.type, r.subtype, r.sourceEndpoint, r.packet.length]).toEqual([4, i % 2 === 0 ? 5 : 3, 55, 54]);
        if (i > 0) expect(r.ktime >= seen[i - 1]!.ktime).toBe(true);
      }
      // Source ports say which round each record came from: rounds arrive in order.
      const rounds = seen.map((r) => (r.packet[34]! << 8) | r.packet[35]!);
      expect(rounds).toEqual([...rounds].sort((a, b) => a - b));
    } finally {
      mmapReader.close();
      libbpfReader.close();
    }
  });

  test("a handler error ends the round after its record; the next round goes on from there; close from the handler", () => {
    const program = lxc!.program("cil_from_container");
    const seen: number[] = [];
    let failAt = 3;
    const reader = new RingBufferReader(
      lxc!.map("cilium_events"),
      (bytes) => {
        seen.push(bytes[1]!);
        if (seen.length === failAt) throw new Error("handler failed");
      },
      { pollIntervalMs: 3_600_000 },
    );
    reader.consumeNow();
    seen.length = 0;
    netns.run(() => testRun(program, { data: packet(9), repeat: 5 }));
    expect(() => reader.consumeNow()).toThrow("handler failed");
    expect(seen.length).toBe(3);
    failAt = 0;
    expect(reader.consumeNow()).toBe(7);
    expect(seen.length).toBe(10);

    const closing = new RingBufferReader(lxc!.map("cilium_events"), () => closing.close(), { pollIntervalMs: 3_600_000 });
    netns.run(() => testRun(program, { data: packet(10), repeat: 2 }));
    expect(closing.consumeNow()).toBe(4);
    expect(() => closing.consumeNow()).toThrow(/closed/);
    reader.close();
  });
});
