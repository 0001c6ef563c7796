/**
 * The hubble CLI through the compiled binary (dist/hubble, dist/cilium hubble) against a Hubble
 * server this test starts on a temp unix socket and on loopback TCP, fed with known flows.
 * Needs `bun scripts/build.ts` first.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Flow } from "../../src/hubble/flow/types.ts";
import { synFlow } from "../helpers/flows.ts";
import { FlowRing } from "../../src/hubble/ring.ts";
import { startHubbleServer, type HubbleServer } from "../../src/hubble/server/index.ts";

const dist = join(import.meta.dir, "../../dist");
const HUBBLE = join(dist, "hubble");
const CILIUM = join(dist, "cilium");

const T = 1_700_000_000; // 2023-11-14T22:13:20Z
const dir = mkdtempSync(join(tmpdir(), "hubble-cli-"));
const socketPath = join(dir, "hubble.sock");
const server = `unix://${socketPath}`;
const ring = new FlowRing(63);
let hubble: HubbleServer;

const flowA: Flow = {
  ...synFlow,
  time: { seconds: T + 1, nanos: 5_000_000 },
  uuid: "a",
  IP: { source: "10.0.0.1", destination: "10.0.1.1", ipVersion: 1 },
  l4: { TCP: { source_port: 40001, destination_port: 80, flags: { SYN: true } } },
  source: { ID: 11, identity: 40001, namespace: "default", pod_name: "client-a", labels: ["k8s:app=client"] },
  destination: { ID: 12, identity: 50000, namespace: "shop", pod_name: "server", labels: ["k8s:app=server"] },
};

const flowB: Flow = {
  time: { seconds: T + 2, nanos: 0 },
  uuid: "b",
  verdict: 2,
  drop_reason: 133,
  drop_reason_desc: 133,
  IP: { source: "10.0.2.5", destination: "192.168.1.9", ipVersion: 1 },
  l4: { UDP: { source_port: 5353, destination_port: 53 } },
  source: { ID: 21, identity: 1, namespace: "kube-system", pod_name: "dns-x", labels: ["reserved:host"] },
  destination: { identity: 2, labels: ["reserved:world"] },
  Type: 1,
  node_name: "node-b",
  event_type: { type: 1, sub_type: 133 },
  traffic_direction: 1,
  is_reply: { value: true },
  Summary: "UDP",
};

const flowC: Flow = {
  time: { seconds: T + 3, nanos: 123_456_789 },
  uuid: "c",
  verdict: 1,
  IP: { source: "fd00::1", destination: "fd00::2", ipVersion: 2 },
  l4: { TCP: { source_port: 443, destination_port: 50000, flags: { SYN: true, ACK: true } } },
  source: { ID: 12, identity: 50000, namespace: "shop", pod_name: "server", labels: ["k8s:app=server"] },
  destination: { ID: 11, identity: 40001, namespace: "default", pod_name: "client-a", labels: ["k8s:app=client"] },
  Type: 1,
  node_name: "node-a",
  event_type: { type: 4, sub_type: 5 },
  traffic_direction: 2,
  trace_observation_point: 5,
  is_reply: { value: true },
  Summary: "TCP Flags: SYN, ACK",
};

/** A flow from a minute ago, for relative --since/--until. */
const recentSeconds = Math.floor(Date.now() / 1000) - 60;
const flowN: Flow = { ...flowA, uuid: "n", time: { seconds: recentSeconds, nanos: 0 }, l4: { ICMPv4: { type: 8, code: 0 } }, is_reply: undefined, Summary: "ICMPv4 EchoRequest" };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string[], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn(cmd, { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const observe = (...args: string[]) => run([HUBBLE, "observe", "--server", server, ...args]);

/** The uuids of the flows `hubble observe --all -o jsonpb <filters>` prints. */
async function uuids(...filters: string[]): Promise<string[]> {
  const r = await observe("--all", "-o", "jsonpb", ...filters);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l).flow.uuid as string);
}

beforeAll(async () => {
  if (!existsSync(HUBBLE)) throw new Error("dist/hubble is missing: run `bun scripts/build.ts` first");
  for (const f of [flowA, flowB, flowC, flowN]) ring.write(f);
  hubble = await startHubbleServer({ ring, nodeName: "node-a", version: "1.2.3-test", socketPath, listenAddress: "127.0.0.1:0" });
});

afterAll(async () => {
  await hubble?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("filter flags: a matching flow is printed, a non-matching one is not", () => {
  const cases: [string[], string[]][] = [
    [["--pod", "default/client-a"], ["a", "c", "n"]],
    [["--from-pod", "default/client-a"], ["a", "n"]],
    [["--to-pod", "shop/server"], ["a", "n"]],
    [["-n", "kube-system"], ["b"]],
    [["--namespace", "shop"], ["a", "c", "n"]],
    // A pod without a namespace is looked up in the namespace flags' namespaces.
    [["--pod", "server", "-n", "shop"], ["a", "c", "n"]],
    [["--pod", "client-a", "-n", "shop"], []],
    [["--from-namespace", "shop"], ["c"]],
    [["--to-namespace", "default"], ["c"]],
    [["-l", "k8s:app=client"], ["a", "c", "n"]],
    [["--label", "reserved:host"], ["b"]],
    [["--from-label", "k8s:app=server"], ["c"]],
    [["--to-label", "reserved:world"], ["b"]],
    [["--ip", "10.0.2.5"], ["b"]],
    [["--ip", "192.168.1.0/24"], ["b"]],
    [["--from-ip", "10.0.0.0/24"], ["a", "n"]],
    [["--to-ip", "fd00::2"], ["c"]],
    [["--identity", "world"], ["b"]],
    [["--identity", "50000"], ["a", "c", "n"]],
    [["--from-identity", "40001"], ["a", "n"]],
    [["--to-identity", "40001"], ["c"]],
    [["--verdict", "DROPPED"], ["b"]],
    [["--verdict", "FORWARDED"], ["a", "c", "n"]],
    [["-t", "drop"], ["b"]],
    [["--type", "trace"], ["a", "c", "n"]],
    [["-t", "trace:to-endpoint"], ["a", "n"]],
    [["-t", "trace:from-endpoint"], ["c"]],
    [["--protocol", "udp"], ["b"]],
    [["--protocol", "tcp"], ["a", "c"]],
    [["--protocol", "icmp"], ["n"]],
    [["--port", "53"], ["b"]],
    [["--from-port", "443"], ["c"]],
    [["--to-port", "80"], ["a"]],
    [["--tcp-flags", "SYN"], ["a", "c"]],
    [["--tcp-flags", "syn,ack"], ["c"]],
    [["--traffic-direction", "ingress"], ["b"]],
    [["--traffic-direction", "egress"], ["a", "c", "n"]],
    [["--node-name", "node-b"], ["b"]],
    [["--drop-reason-desc", "POLICY_DENIED"], ["b"]],
    [["--not", "--verdict", "DROPPED"], ["a", "c", "n"]],
    [["--not", "--pod", "default/client-a"], ["b"]],
    // Values of one flag OR, different flags AND, --not applies to one flag only.
    [["--verdict", "DROPPED", "--verdict", "FORWARDED", "--protocol", "tcp"], ["a", "c"]],
    [["--not", "--protocol", "tcp", "--verdict", "FORWARDED"], ["n"]],
  ];
  for (const [flags, expected] of cases) {
    test(flags.join(" "), async () => {
      expect((await uuids(...flags)).sort()).toEqual(expected);
    });
  }
});

describe("output formats", () => {
  test("compact (default), including replies shown from the initiator's side", async () => {
    const r = await observe("--until", "2023-11-14T22:13:24Z");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "Nov 14 22:13:21.005: default/client-a:40001 (ID:40001) -> shop/server:80 (ID:50000) to-endpoint FORWARDED (TCP Flags: SYN)",
        "Nov 14 22:13:22.000: 192.168.1.9:53 (world) <- kube-system/dns-x:5353 (host) Policy denied DROPPED (UDP)",
        "Nov 14 22:13:23.123: default/client-a:50000 (ID:40001) <- shop/server:443 (ID:50000) from-endpoint FORWARDED (TCP Flags: SYN, ACK)",
        "",
      ].join("\n"),
    );
  });

  test("compact with --print-node-name, --time-format and an unknown direction", async () => {
    const r = await observe("--last", "1", "--print-node-name", "--time-format", "RFC3339Milli");
    const t = new Date(recentSeconds * 1000).toISOString().slice(0, 19);
    expect(r.stdout).toBe(`${t}Z [node-a]: default/client-a (ID:40001) <> shop/server (ID:50000) to-endpoint FORWARDED (ICMPv4 EchoRequest)\n`);
  });

  test("--numeric prints addresses instead of pod names", async () => {
    const r = await observe("--first", "1", "--numeric");
    expect(r.stdout).toBe("Nov 14 22:13:21.005: 10.0.0.1:40001 (ID:40001) -> 10.0.1.1:80 (ID:50000) to-endpoint FORWARDED (TCP Flags: SYN)\n");
  });

  test("dict", async () => {
    const r = await observe("--first", "2", "-o", "dict");
    expect(r.stdout).toBe(
      [
        "  TIMESTAMP: Nov 14 22:13:21.005",
        "     SOURCE: default/client-a:40001",
        "DESTINATION: shop/server:80",
        "       TYPE: to-endpoint",
        "    VERDICT: FORWARDED",
        "    SUMMARY: TCP Flags: SYN",
        "------------",
        "  TIMESTAMP: Nov 14 22:13:22.000",
        "     SOURCE: kube-system/dns-x:5353",
        "DESTINATION: 192.168.1.9:53",
        "       TYPE: Policy denied",
        "    VERDICT: DROPPED",
        "    SUMMARY: UDP",
        "",
      ].join("\n"),
    );
  });

  test("table", async () => {
    const r = await observe("--first", "3", "-o", "table");
    expect(r.stdout).toBe(
      [
        "TIMESTAMP             SOURCE                   DESTINATION              TYPE            VERDICT     SUMMARY",
        "Nov 14 22:13:21.005   default/client-a:40001   shop/server:80           to-endpoint     FORWARDED   TCP Flags: SYN",
        "Nov 14 22:13:22.000   kube-system/dns-x:5353   192.168.1.9:53           Policy denied   DROPPED     UDP",
        "Nov 14 22:13:23.123   shop/server:443          default/client-a:50000   from-endpoint   FORWARDED   TCP Flags: SYN, ACK",
        "",
      ].join("\n"),
    );
  });

  test("jsonpb and json (its alias): one GetFlowsResponse per line", async () => {
    const expected =
      '{"flow":{"time":"2023-11-14T22:13:22Z","uuid":"b","verdict":"DROPPED","drop_reason":133,"IP":{"source":"10.0.2.5","destination":"192.168.1.9","ipVersion":"IPv4"},' +
      '"l4":{"UDP":{"source_port":5353,"destination_port":53}},"source":{"ID":21,"identity":1,"namespace":"kube-system","labels":["reserved:host"],"pod_name":"dns-x"},' +
      '"destination":{"identity":2,"labels":["reserved:world"]},"Type":"L3_L4","node_name":"node-b","event_type":{"type":1,"sub_type":133},"traffic_direction":"INGRESS",' +
      '"drop_reason_desc":"POLICY_DENIED","is_reply":true,"Summary":"UDP"},"node_name":"node-a","time":"2023-11-14T22:13:22Z"}\n';
    for (const o of ["jsonpb", "json"]) {
      const r = await observe("--verdict", "DROPPED", "-o", o);
      expect(r.stdout).toBe(expected);
    }
  });

  test("HUBBLE_COMPAT=legacy-json-output: -o json prints the bare flow", async () => {
    const r = await run([HUBBLE, "observe", "--server", server, "--to-port", "80", "-o", "json"], { HUBBLE_COMPAT: "legacy-json-output" });
    const line = JSON.parse(r.stdout);
    expect(line.uuid).toBe("a");
    expect(line.flow).toBeUndefined();
  });
});

describe("selectors", () => {
  test("default is the last 20; --last N and --first N", async () => {
    expect((await observe()).stdout.trim().split("\n")).toHaveLength(4);
    expect((await observe("--last", "2", "-o", "jsonpb")).stdout).toContain('"uuid":"c"');
    expect((await observe("--last", "2", "-o", "jsonpb")).stdout).not.toContain('"uuid":"b"');
    const first = (await observe("--first", "1", "-o", "jsonpb")).stdout;
    expect(first.trim().split("\n")).toHaveLength(1);
    expect(first).toContain('"uuid":"a"');
  });

  test("--since/--until with absolute times", async () => {
    expect(await uuids("--since", "2023-11-14T22:13:21.5Z", "--until", "2023-11-14T22:13:22.5Z")).toEqual(["b"]);
    expect(await uuids("--since", "2023-11-14T23:13:22+01:00", "--until", "Tue, 14 Nov 2023 22:13:23 +0000")).toEqual(["b"]);
    expect(await uuids("--until", "2023-11-14")).toEqual([]);
  });

  test("--since/--until with relative durations", async () => {
    expect(await uuids("--since", "5m")).toEqual(["n"]);
    expect(await uuids("--until", "10m")).toEqual(["a", "b", "c"]);
    expect(await uuids("--since", "1h30m", "--until", "30s")).toEqual(["n"]);
  });

  test("--follow delivers a new flow within a second", async () => {
    const proc = Bun.spawn([HUBBLE, "observe", "--server", server, "--follow", "--last", "1", "-o", "jsonpb"], { stdout: "pipe", stderr: "pipe" });
    try {
      const reader = proc.stdout.getReader();
      let text = "";
      const readUntil = async (needle: string, ms: number) => {
        const deadline = Date.now() + ms;
        while (!text.includes(needle)) {
          const left = deadline - Date.now();
          if (left <= 0) return false;
          const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
          if (!chunk || chunk.done) return text.includes(needle);
          text += new TextDecoder().decode(chunk.value);
        }
        return true;
      };
      // The last stored flow first: the stream is up.
      expect(await readUntil('"uuid":"n"', 10_000)).toBe(true);
      const added = Date.now();
      ring.write({ ...flowA, uuid: "followed", time: { seconds: Math.floor(added / 1000), nanos: 0 } });
      expect(await readUntil('"uuid":"followed"', 1000)).toBe(true);
      expect(Date.now() - added).toBeLessThan(1000);
    } finally {
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
    }
  });
});

describe("lost events", () => {
  test("are printed in every format, whatever the filters", async () => {
    const lostSocket = join(dir, "lost.sock");
    const lostRing = new FlowRing(7);
    lostRing.write(flowA);
    lostRing.writeLost({ source: 1, count: 5, time: { seconds: T + 5, nanos: 0 } });
    const lostServer = await startHubbleServer({ ring: lostRing, nodeName: "node-l", version: "1", socketPath: lostSocket });
    try {
      const at = (...args: string[]) => run([HUBBLE, "observe", "--server", `unix://${lostSocket}`, "--verdict", "DROPPED", ...args]);
      expect((await at()).stdout).toBe("Nov 14 22:13:25.000 EVENTS LOST: PERF_EVENT_RING_BUFFER CPU(0) 5\n");
      expect((await at("-o", "jsonpb")).stdout).toBe('{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"5"},"node_name":"node-l","time":"2023-11-14T22:13:25Z"}\n');
      expect((await at("-o", "table")).stdout).toBe(
        "TIMESTAMP             SOURCE                   DESTINATION   TYPE          VERDICT   SUMMARY\nNov 14 22:13:25.000   PERF_EVENT_RING_BUFFER   -             EVENTS LOST   -         CPU(0) - 5\n",
      );
    } finally {
      await lostServer.stop();
    }
  });
});

describe("status and list", () => {
  test("hubble status", async () => {
    const r = await run([HUBBLE, "status", "--server", server]);
    expect(r.code).toBe(0);
    const n = ring.length;
    expect(r.stdout).toMatch(new RegExp(`^Healthcheck \\(via ${server.replaceAll("/", "\\/")}\\): Ok\\nCurrent/Max Flows: ${n}/63 \\(${((n / 63) * 100).toFixed(2)}%\\)\\nFlows/s: \\d+\\.\\d\\d\\n$`));
  });

  test("hubble status -o json and dict", async () => {
    const json = JSON.parse((await run([HUBBLE, "status", "--server", server, "-o", "json"])).stdout);
    expect(json.max_flows).toBe("63");
    expect(json.version).toBe("1.2.3-test");
    const dict = (await run([HUBBLE, "status", "--server", server, "-o", "dict"])).stdout;
    expect(dict).toContain("          MAX FLOWS: 63\n");
    expect(dict).toContain("            VERSION: 1.2.3-test\n");
  });

  test("hubble list nodes", async () => {
    const r = await run([HUBBLE, "list", "nodes", "--server", server]);
    expect(r.code).toBe(0);
    const [header, row, end] = r.stdout.split("\n");
    expect(header).toMatch(/^NAME     STATUS      AGE +FLOWS\/S +CURRENT\/MAX-FLOWS$/);
    expect(row).toMatch(/^node-a   Connected   \d+s +\d+\.\d\d +\d+\/63 \( +\d+\.\d\d%\)$/);
    // Columns aligned as a tabwriter does: each header starts where its column does.
    const cells = row!.split(/(?<=\S)   +/);
    expect(header!.indexOf("FLOWS/S")).toBe(row!.indexOf(cells[3]!));
    expect(header!.indexOf("CURRENT/MAX-FLOWS")).toBe(row!.indexOf(cells[4]!));
    expect(end).toBe("");
  });

  test("upstream's aliases: observe flows, list node", async () => {
    const flows = await run([HUBBLE, "observe", "flows", "--server", server, "--first", "1", "--numeric"]);
    expect(flows.stdout).toBe("Nov 14 22:13:21.005: 10.0.0.1:40001 (ID:40001) -> 10.0.1.1:80 (ID:50000) to-endpoint FORWARDED (TCP Flags: SYN)\n");
    const node = await run([HUBBLE, "list", "node", "--server", server]);
    expect(node.stdout).toStartWith("NAME     STATUS      AGE");
  });

  test("hubble list namespaces", async () => {
    const r = await run([HUBBLE, "list", "namespaces", "--server", server]);
    expect(r.stdout).toBe("NAMESPACE\ndefault\nkube-system\nshop\n");
  });

  test("over TCP, server taken from HUBBLE_SERVER, and as `cilium hubble`", async () => {
    const r = await run([CILIUM, "hubble", "status"], { HUBBLE_SERVER: `127.0.0.1:${hubble.tcpPort}` });
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`Healthcheck (via 127.0.0.1:${hubble.tcpPort}): Ok\n`);
    const o = await run([CILIUM, "hubble", "observe", "--server", `127.0.0.1:${hubble.tcpPort}`, "--first", "1", "--numeric"]);
    expect(o.stdout).toBe("Nov 14 22:13:21.005: 10.0.0.1:40001 (ID:40001) -> 10.0.1.1:80 (ID:50000) to-endpoint FORWARDED (TCP Flags: SYN)\n");
  });
});

describe("errors", () => {
  const nowhere = `unix://${join(dir, "nothing.sock")}`;

  test("an unreachable server is named, exit status 1", async () => {
    for (const cmd of [["observe"], ["status"], ["list", "nodes"]]) {
      const r = await run([HUBBLE, ...cmd, "--server", nowhere]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(`failed to connect to '${nowhere}'`);
    }
    // A TCP port nobody listens on (the server's port after a bind/close would race: use port 1).
    const r = await run([HUBBLE, "observe", "--server", "127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed to connect to '127.0.0.1:1'");
  });

  test("bad flag values fail before connecting", async () => {
    const bad: [string[], string][] = [
      [["--verdict", "MAYBE"], "invalid --verdict value: MAYBE"],
      [["--ip", "10.0.0.0/33"], 'invalid --ip value "10.0.0.0/33"'],
      [["--to-ip", "not-an-ip"], 'invalid --to-ip value "not-an-ip"'],
      [["--since", "yesterday"], "failed to parse the since time: failed to convert yesterday to time"],
      [["--until", "2023-13-01"], "failed to parse the until time"],
      [["--port", "70000"], 'invalid --port value "70000"'],
      [["-t", "nonsense"], "unable to parse type 'nonsense'"],
      [["--traffic-direction", "sideways"], "invalid traffic direction"],
      [["--identity", "nobody"], 'invalid security identity "nobody"'],
      [["--tcp-flags", "SYN,BOGUS"], "unknown tcp flag: BOGUS"],
      [["--not"], "trailing --not found in the arguments"],
      [["--not", "--not", "--pod", "x"], "consecutive --not statements"],
      [["--from-pod", "a", "-n", "b"], "filters --from-pod and --namespace cannot be combined"],
      [["--pod", "other/a", "-n", "b"], 'namespace conflict: "b" does not contain "other/a"'],
      [["--first", "1", "--last", "1"], "cannot set both --first and --last"],
      [["-o", "yaml"], "invalid output format: yaml"],
      [["-f", "-o", "table"], "table output format is not compatible with follow mode"],
      [["--time-format", "Kitchen"], 'unknown time format "Kitchen"'],
      [["--last", "-3"], 'invalid argument "-3" for "--last" flag'],
      [["--bogus"], "unknown flag: --bogus"],
      [["--timeout", "soon"], 'invalid argument "soon" for "--timeout" flag'],
      [["--tls", "--tls-ca-cert-files", join(dir, "missing.pem")], "cannot load cert"],
    ];
    for (const [flags, message] of bad) {
      const r = await run([HUBBLE, "observe", "--server", nowhere, ...flags]);
      expect({ flags, code: r.code }).toEqual({ flags, code: 1 });
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain("failed to connect");
    }
  });

  test("a filter the server rejects: its gRPC status, as upstream prints it", async () => {
    const r = await observe("-l", "a b");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe('rpc error: code = InvalidArgument desc = invalid label key "a b" in selector "a b"\n');
  });

  test("a CA file that is not PEM is rejected", async () => {
    const notPem = join(dir, "ca.txt");
    writeFileSync(notPem, "hello");
    const r = await run([HUBBLE, "status", "--server", "tls://127.0.0.1:1", "--tls-ca-cert-files", notPem]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot process cert '${notPem}': must be a PEM encoded certificate`);
  });
});
