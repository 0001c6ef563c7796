/**
 * Policy-verdict records and `cilium monitor` output, on records captured from the real datapath
 * (bpf_lxc.o run with BPF_PROG_TEST_RUN: pod 10.0.0.1, endpoint 101, identity 40001, sends TCP
 * SYNs to pod 10.0.0.2, endpoint 202, identity 40002; egress allows 40002 tcp/80 and any tcp/8080;
 * 202's ingress allows any tcp and denies 40001 tcp/8080). Expected text is written by hand from
 * upstream's formats.
 */
import { describe, expect, test } from "bun:test";
import { connectionSummary, formatLost, formatMonitorRecord, icmp4TypeCode, matchesFilter, type MonitorFilter } from "../../src/agent/cli/monitor-format.ts";
import { FrameDecoder, LOST_FRAME_LEN, writeLostFrame, writeRecordFrame } from "../../src/agent/monitor/protocol.ts";
import { Verdict } from "../../src/hubble/flow/types.ts";
import { FlowParser, type EndpointResolver } from "../../src/hubble/parser/index.ts";
import { decodePacket } from "../../src/hubble/parser/packet.ts";
import { decodeEventRecord } from "../../src/hubble/parser/record.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const SYN_80 = "08004500002812340000400600000a0000010a000002a028005000000001000000005002faf000000000";
const SYN_8080 = "08004500002812340000400600000a0000010a000002a0291f9000000001000000005002faf000000000";
/** Policy verdict: 101's egress allows 10.0.0.1:41000 -> 10.0.0.2:80 (identity 40002, tcp/80: L3-L4). */
const VERDICT_EGRESS_ALLOW = hex(`05006500cd3b380d3600000036000100419c0000429c0000ca00001201000000b33670916f090000000000005000060002000000000102000000000a${SYN_80}`);
/** Policy verdict: 202's ingress allows the same packet by "any identity, tcp" (Proto-Only). */
const VERDICT_INGRESS_ALLOW = hex(`0500ca00cd3b380d3600000036000100419c0000429c0000ca00003101000000295470916f090000000000005000060002000000000102000000000a${SYN_80}`);
/** Trace to-endpoint 202 of that packet (TTL already decremented). */
const TRACE_TO_ENDPOINT = hex(
  "04006500cd3b380d3600000036000100419c0000429c0000ca00000101000000ee8770916f090000000000000000000002000000000b020000000002080045000028123400003f0601000a0000010a000002a028005000000001000000005002faf000000000",
);
/** Policy verdict: 101's egress allows tcp/8080 to any identity (L4-Only). */
const VERDICT_EGRESS_L4 = hex(`050065005dc01b443600000036000100419c0000429c0000ca00001a01000000915273916f09000000000000901f060002000000000102000000000a${SYN_8080}`);
/** Policy verdict: 202's ingress denies 40001 tcp/8080 (181, L3-L4). */
const VERDICT_INGRESS_DENY = hex(`0500ca005dc01b443600000036000100419c0000429c0000ca00b51101000000145773916f09000000000000901f060002000000000102000000000a${SYN_8080}`);
/** The drop that follows it. */
const DROP_DENYLIST = hex(`01b565005dc01b443600000036000100419c0000429c0000ca00050101000000e85973916f09000000000000c000010002000000000102000000000a${SYN_8080}`);

describe("policy-verdict records", () => {
  test("decode: direction, verdict, match type, remote identity, port and protocol", () => {
    expect(decodeEventRecord(VERDICT_EGRESS_ALLOW)).toMatchObject({ type: 5, subtype: 0, sourceEndpoint: 101, dstEndpoint: 202, direction: 2, reply: false, policy: { dropReason: 0, matchType: 2, remoteIdentity: 40002, dport: 80, proto: 6 } });
    expect(decodeEventRecord(VERDICT_INGRESS_ALLOW).policy).toEqual({ dropReason: 0, matchType: 6, remoteIdentity: 40001, dport: 80, proto: 6 });
    expect(decodeEventRecord(VERDICT_EGRESS_L4).policy).toEqual({ dropReason: 0, matchType: 3, remoteIdentity: 40002, dport: 8080, proto: 6 });
    expect(decodeEventRecord(VERDICT_INGRESS_DENY)).toMatchObject({ sourceEndpoint: 202, direction: 1, policy: { dropReason: 181, matchType: 2, remoteIdentity: 40001, dport: 8080, proto: 6 } });
    // A verdict's line/file are its port and protocol, never a source location.
    expect(decodeEventRecord(VERDICT_INGRESS_DENY).file).toBeUndefined();
    expect(decodeEventRecord(DROP_DENYLIST).file).toEqual({ name: "bpf_lxc.c", line: 192 });
    expect(decodeEventRecord(DROP_DENYLIST).policy).toBeUndefined();
  });

  const resolver: EndpointResolver = {
    endpointByIp: (ip) =>
      ({
        "10.0.0.1": { id: 101, identity: 40001, namespace: "shop", podName: "client", labels: ["k8s:app=client"] },
        "10.0.0.2": { id: 202, identity: 40002, namespace: "shop", podName: "server", labels: ["k8s:app=server"] },
      })[ip],
    identityLabels: () => undefined,
  };
  const parser = new FlowParser({ nodeName: "n1", resolver, clock: () => ({ seconds: 1, nanos: 0 }), uuid: () => "u" });

  test("an allow becomes a FORWARDED policy-verdict flow: match type, direction, not a reply", () => {
    const flow = parser.parse(VERDICT_EGRESS_ALLOW);
    expect(flow).toMatchObject({
      verdict: Verdict.FORWARDED,
      event_type: { type: 5, sub_type: 0 },
      policy_match_type: 2,
      traffic_direction: 2,
      is_reply: { value: false },
      source: { ID: 101, identity: 40001, pod_name: "client" },
      destination: { ID: 202, identity: 40002, pod_name: "server" },
      IP: { source: "10.0.0.1", destination: "10.0.0.2" },
    });
    expect(flow.drop_reason).toBeUndefined();
    expect(parser.parse(VERDICT_INGRESS_ALLOW)).toMatchObject({ verdict: Verdict.FORWARDED, policy_match_type: 6, traffic_direction: 1 });
  });

  test("a deny becomes a DROPPED policy-verdict flow with its drop reason", () => {
    const flow = parser.parse(VERDICT_INGRESS_DENY);
    expect(flow).toMatchObject({ verdict: Verdict.DROPPED, drop_reason: 181, drop_reason_desc: 181, policy_match_type: 2, traffic_direction: 1, event_type: { type: 5, sub_type: 0 } });
    expect(flow.destination).toMatchObject({ ID: 202, identity: 40002 });
    expect(flow.source).toMatchObject({ ID: 101, identity: 40001 });
  });
});

describe("cilium monitor output", () => {
  const info = { verbosity: "info", numeric: false } as const;
  const text = (bytes: Uint8Array, options: Parameters<typeof formatMonitorRecord>[1] = info) => formatMonitorRecord(decodeEventRecord(bytes), options);

  test("policy verdicts as upstream's 'Policy verdict log' line", () => {
    expect(text(VERDICT_EGRESS_ALLOW)).toBe(
      "Policy verdict log: flow 0xd383bcd local EP ID 101, remote ID 40002, proto 6, egress, action allow, auth: disabled, match L3-L4, 10.0.0.1:41000 -> 10.0.0.2:80 tcp SYN\n",
    );
    expect(text(VERDICT_INGRESS_DENY)).toBe(
      "Policy verdict log: flow 0x441bc05d local EP ID 202, remote ID 40001, proto 6, ingress, action deny, auth: disabled, match L3-L4, 10.0.0.1:41001 -> 10.0.0.2:8080 tcp SYN\n",
    );
    expect(text(VERDICT_INGRESS_ALLOW)).toContain(", ingress, action allow, auth: disabled, match Proto-Only, ");
    expect(text(VERDICT_EGRESS_L4)).toContain(", match L4-Only, ");
  });

  test("drops and traces as upstream's DumpInfo lines", () => {
    expect(text(DROP_DENYLIST)).toBe(
      "xx drop (Policy denied by denylist) flow 0x441bc05d to endpoint 202, ifindex 1, file bpf_lxc.c:192, , identity 40001->40002: 10.0.0.1:41001 -> 10.0.0.2:8080 tcp SYN\n",
    );
    expect(text(TRACE_TO_ENDPOINT)).toBe("-> endpoint 202 flow 0xd383bcd , identity 40001->40002 state new ifindex 1 orig-ip 0.0.0.0: 10.0.0.1:41000 -> 10.0.0.2:80 tcp SYN\n");
    expect(text(TRACE_TO_ENDPOINT, { ...info, ifname: (i) => (i === 1 ? "lxc1234" : undefined) })).toContain("state new ifindex lxc1234 orig-ip");
  });

  test("reserved identities by name unless -n", () => {
    const world = new Uint8Array(DROP_DENYLIST);
    new DataView(world.buffer).setUint32(16, 2, true);
    expect(text(world)).toContain(", , identity world->40002: ");
    expect(text(world, { verbosity: "info", numeric: true })).toContain(", , identity 2->40002: ");
  });

  test("-vv: upstream's verbose header line, then the layers", () => {
    expect(text(DROP_DENYLIST, { verbosity: "verbose", numeric: false })).toBe(
      "------------------------------------------------------------------------------\n" +
        "CPU 00: MARK 0x441bc05d FROM 101 DROP: 54 bytes, reason Policy denied by denylist, identity 40001->40002, to endpoint 202\n" +
        "Ethernet\t{SrcMAC=02:00:00:00:00:0a DstMAC=02:00:00:00:00:01}\n" +
        "IPv4\t{SrcIP=10.0.0.1 DstIP=10.0.0.2}\n" +
        "TCP\t{SrcPort=41001 DstPort=8080 Flags=SYN}\n",
    );
    expect(text(TRACE_TO_ENDPOINT, { verbosity: "verbose", numeric: false }).split("\n")[1]).toBe(
      "CPU 00: MARK 0xd383bcd FROM 101 to-endpoint: 54 bytes (54 captured), state new, interface 1, , identity 40001->40002, orig-ip 0.0.0.0, to endpoint 202",
    );
  });

  test("-j: one JSON object per line with upstream's field names", () => {
    const json = { verbosity: "json", numeric: false } as const;
    expect(JSON.parse(text(DROP_DENYLIST, json))).toEqual({
      cpu: "CPU 00:",
      type: "drop",
      mark: "0x441bc05d",
      reason: "Policy denied by denylist",
      source: 101,
      bytes: 54,
      srcLabel: 40001,
      dstLabel: 40002,
      dstID: 202,
      Line: 192,
      File: 1,
      ExtError: 0,
      Ifindex: 1,
      summary: { l2: { src: "02:00:00:00:00:0a", dst: "02:00:00:00:00:01" }, l3: { src: "10.0.0.1", dst: "10.0.0.2" }, l4: { src: "41001", dst: "8080" } },
    });
    expect(JSON.parse(text(TRACE_TO_ENDPOINT, json))).toMatchObject({ type: "trace", mark: "0xd383bcd", ifindex: "1", state: "new", observationPoint: "to-endpoint", traceSummary: "-> endpoint 202", source: 101, dstID: 202 });
    expect(JSON.parse(text(VERDICT_INGRESS_DENY, json))).toMatchObject({ type: "policy-verdict", source: 202, remoteLabel: 40001, proto: 6, dstPort: 8080, direction: "ingress", action: "deny", reason: "Policy denied by denylist", match: "L3-L4" });
    expect(JSON.parse(formatLost(7, "client", "json"))).toEqual({ cpu: "CPU 00:", type: "lost", lost: 7, where: "client" });
  });

  test("lost events as upstream prints them", () => {
    expect(formatLost(42, "datapath", "info")).toBe("CPU 00: Lost 42 events\n");
  });

  test("filters: -t, --from, --to, --related-to", () => {
    const none: MonitorFilter = { types: [], from: [], to: [], relatedTo: [] };
    const drop = decodeEventRecord(DROP_DENYLIST);
    const verdict = decodeEventRecord(VERDICT_INGRESS_DENY);
    expect(matchesFilter(drop, none)).toBe(true);
    expect(matchesFilter(drop, { ...none, types: [5] })).toBe(false);
    expect(matchesFilter(verdict, { ...none, types: [5] })).toBe(true);
    expect(matchesFilter(drop, { ...none, types: [1, 4] })).toBe(true);
    expect(matchesFilter(drop, { ...none, relatedTo: [202] })).toBe(true);
    expect(matchesFilter(drop, { ...none, relatedTo: [101] })).toBe(true);
    expect(matchesFilter(drop, { ...none, relatedTo: [303] })).toBe(false);
    expect(matchesFilter(drop, { ...none, from: [101] })).toBe(true);
    expect(matchesFilter(drop, { ...none, to: [101] })).toBe(false);
  });

  test("connection summaries: ICMP type/code names, UDP, bare IP", () => {
    expect(icmp4TypeCode(8, 0)).toBe("EchoRequest");
    expect(icmp4TypeCode(3, 3)).toBe("DestinationUnreachable(Port)");
    expect(icmp4TypeCode(11, 0)).toBe("TimeExceeded(TTLExceeded)");
    expect(icmp4TypeCode(8, 5)).toBe("EchoRequest(Code: 5)");
    expect(icmp4TypeCode(42, 1)).toBe("42(1)");
    const icmp = hex("0200000000010200000000020800450000540001000040010000c0a80001c0a8000208000000abcd0001");
    expect(connectionSummary(decodePacket(icmp))).toBe("192.168.0.1 -> 192.168.0.2 EchoRequest");
    const udp = hex("02000000000102000000000208004500001c0001000040110000c0a80001c0a80002d43100350008000000");
    expect(connectionSummary(decodePacket(udp))).toBe("192.168.0.1:54321 -> 192.168.0.2:53 udp");
  });
});

describe("monitor socket frames", () => {
  test("records and lost counts survive any split of the stream", () => {
    const buffer = new Uint8Array(1024);
    let end = writeRecordFrame(buffer, 0, DROP_DENYLIST);
    end += writeLostFrame(buffer, end, 12345, "client");
    end += writeRecordFrame(buffer, end, VERDICT_EGRESS_ALLOW);
    end += writeLostFrame(buffer, end, 3, "datapath");
    expect(end).toBe(5 + DROP_DENYLIST.length + LOST_FRAME_LEN + 5 + VERDICT_EGRESS_ALLOW.length + LOST_FRAME_LEN);
    const stream = buffer.subarray(0, end);
    for (const cut of [1, 4, 5, 7, 60, 150, end - 1]) {
      const decoder = new FrameDecoder();
      const frames = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      expect(frames).toEqual([
        { kind: "record", record: DROP_DENYLIST },
        { kind: "lost", count: 12345, where: "client" },
        { kind: "record", record: VERDICT_EGRESS_ALLOW },
        { kind: "lost", count: 3, where: "datapath" },
      ]);
    }
  });

  test("a stream that is not ours is refused", () => {
    expect(() => new FrameDecoder().push(new TextEncoder().encode("HTTP/1.1 200 OK\r\n\r\n"))).toThrow(/not a monitor socket/);
  });
});
