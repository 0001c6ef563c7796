/**
 * Hubble in the agent's daemon, with the recording fake datapath: records laid out byte for byte
 * as bpf/lib/events.h are pushed through the real monitor hub, and flows are read back over
 * gRPC on the agent's Hubble socket. Pods are created through the agent's API as the CNI plugin
 * does (namespace and pod name from K8S_POD_NAMESPACE / K8S_POD_NAME). Needs no root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient } from "../../src/agent/api/client.ts";
import type { EndpointChangeRequest } from "../../src/agent/api/types.ts";
import { loadAgentConfig } from "../../src/agent/config-sources.ts";
import { ConfigError, type AgentConfig } from "../../src/agent/config.ts";
import { startDaemon, type Daemon } from "../../src/agent/daemon.ts";
import type { Flow } from "../../src/hubble/flow/types.ts";
import { grpcServiceDefinition } from "../../src/hubble/proto/grpc.ts";
import { RecordingDatapath, quietLogger } from "../helpers/agent-fake-datapath.ts";
import { DIR_EGRESS, DIR_INGRESS, DROP_POLICY, EVENT_DROP, EVENT_TRACE, eventRecord, icmpEchoPacket, tcpPacket, TRACE_FROM_LXC, TRACE_TO_LXC } from "../helpers/event-records.ts";

type Obj = Record<string, any>;

let dir: string;
let config: AgentConfig;
let datapath: RecordingDatapath;
let daemon: Daemon;
let agent: AgentClient;
let observer: Client & Record<string, any>;
const pods: Record<string, { id: number; ip: string; identity: number }> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "agent-hubble-"));
  ({ config } = loadAgentConfig(
    {
      "node-name": "hubble-node",
      "ipv4-range": "10.213.0.0/24",
      "state-dir": join(dir, "state"),
      "bpf-root": join(dir, "bpf"),
      "socket-path": join(dir, "run", "cilium.sock"),
      "hubble-event-buffer-capacity": "31",
    },
    {},
  ));
  datapath = new RecordingDatapath();
  daemon = await startDaemon({ config, datapath, logger: quietLogger() });
  agent = new AgentClient(config.socketPath, { timeoutMs: 5000 });
  for (const [name, namespace, app] of [
    ["web-0", "shop", "web"],
    ["db-0", "shop", "db"],
    ["pay-0", "billing", "pay"],
  ] as const) {
    const ip = (await agent.allocateIp(`${name}:eth0`)).ipv4.ip;
    const request: EndpointChangeRequest = {
      "container-id": name,
      "container-interface-name": "eth0",
      "interface-name": `lxc${name}`,
      "interface-index": 7,
      mac: "0a:58:0a:d5:00:02",
      "host-mac": "0a:58:0a:d5:00:01",
      addressing: { ipv4: ip },
      "k8s-namespace": namespace,
      "k8s-pod-name": name,
      labels: [`k8s:app=${app}`],
    };
    const endpoint = await agent.putEndpoint(`cni-attachment-id:${name}:eth0`, request);
    pods[name] = { id: endpoint.id, ip, identity: endpoint.identity! };
  }
  const Observer = makeGenericClientConstructor(grpcServiceDefinition("observer.Observer"), "Observer");
  observer = new Observer(`unix:${config.hubble.socketPath}`, credentials.createInsecure()) as any;
});

afterAll(async () => {
  observer?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function unary(method: string, req: Obj = {}): Promise<Obj> {
  return new Promise((resolve, reject) => observer[method]!(req, (err: ServiceError | null, res: Obj) => (err ? reject(err) : resolve(res))));
}

/** Every response of a finite GetFlows. */
function getFlows(req: Obj): Promise<Obj[]> {
  return new Promise((resolve, reject) => {
    const out: Obj[] = [];
    const stream = observer.GetFlows(req);
    stream.on("data", (d: Obj) => out.push(d));
    stream.on("end", () => resolve(out));
    stream.on("error", reject);
  });
}

/** The last `n` flows, without the empty lists the wire decoding adds for absent repeated fields. */
async function lastFlows(n: number): Promise<Flow[]> {
  const flows = (await getFlows({ number: n })).filter((r) => r.flow).map((r) => r.flow as Flow);
  for (const flow of flows) for (const ep of [flow.source, flow.destination]) if (ep?.workloads?.length === 0) delete ep.workloads;
  return flows;
}

/** web-0 -> db-0 TCP SYN, as db-0's ingress program reports it after policy allowed it. */
function allowedSyn(sport: number): Uint8Array {
  const { ip: src, identity: srcId } = pods["web-0"]!;
  const { id: dstEp, ip: dst, identity: dstId } = pods["db-0"]!;
  return eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_LXC, source: dstEp, srcIdentity: srcId, dstIdentity: dstId, dstId: dstEp, reason: 0, flags: DIR_INGRESS }, tcpPacket({ src, dst, sport, dport: 5432, flags: 0x02 }));
}

describe("flows from datapath records, enriched from the agent's caches", () => {
  test("an allowed connection between two pods: names, namespaces, identities, labels, FORWARDED", async () => {
    datapath.emitEvent(allowedSyn(40001));
    const [flow] = await lastFlows(1);
    expect(flow!.verdict).toBe(1);
    expect(flow!.node_name).toBe("hubble-node");
    expect(flow!.IP).toMatchObject({ source: pods["web-0"]!.ip, destination: pods["db-0"]!.ip });
    expect(flow!.l4).toEqual({ TCP: { source_port: 40001, destination_port: 5432, flags: { SYN: true } } });
    expect(flow!.source).toEqual({
      ID: pods["web-0"]!.id,
      identity: pods["web-0"]!.identity,
      namespace: "shop",
      pod_name: "web-0",
      labels: ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"],
    });
    expect(flow!.destination).toEqual({
      ID: pods["db-0"]!.id,
      identity: pods["db-0"]!.identity,
      namespace: "shop",
      pod_name: "db-0",
      labels: ["k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop"],
    });
    expect(flow!.traffic_direction).toBe(1);
    expect(flow!.trace_observation_point).toBe(101);
    expect(flow!.is_reply).toEqual({ value: false });
    expect(flow!.Summary).toBe("TCP Flags: SYN");
  });

  test("a policy drop across namespaces: DROPPED, POLICY_DENIED, both pods named", async () => {
    const { id: srcEp, ip: src, identity: srcId } = pods["pay-0"]!;
    const { ip: dst, identity: dstId } = pods["web-0"]!;
    datapath.emitEvent(
      eventRecord(
        { type: EVENT_DROP, subtype: DROP_POLICY, source: srcEp, srcIdentity: srcId, dstIdentity: dstId, flags: DIR_EGRESS, line: 180, file: 1 },
        tcpPacket({ src, dst, sport: 33000, dport: 80, flags: 0x02 }),
      ),
    );
    const [flow] = await lastFlows(1);
    expect(flow!.verdict).toBe(2);
    expect(flow!.drop_reason_desc).toBe(133);
    expect(flow!.event_type).toEqual({ type: 1, sub_type: 133 });
    expect(flow!.traffic_direction).toBe(2);
    expect(flow!.source).toMatchObject({ ID: srcEp, identity: srcId, namespace: "billing", pod_name: "pay-0" });
    expect(flow!.destination).toMatchObject({ identity: dstId, namespace: "shop", pod_name: "web-0" });
    expect(flow!.file).toEqual({ name: "bpf_lxc.c", line: 180 });
  });

  test("remote addresses carry the reserved labels of their identity (world, host)", async () => {
    const { id, ip, identity } = pods["web-0"]!;
    datapath.emitEvent(eventRecord({ type: EVENT_TRACE, subtype: TRACE_FROM_LXC, source: id, srcIdentity: identity, dstIdentity: 2, reason: 0, flags: DIR_EGRESS }, icmpEchoPacket(ip, "198.51.100.7")));
    datapath.emitEvent(eventRecord({ type: EVENT_TRACE, subtype: TRACE_TO_LXC, source: id, srcIdentity: 1, dstIdentity: identity, dstId: id, reason: 0, flags: DIR_INGRESS }, tcpPacket({ src: "10.213.0.1", dst: ip, sport: 50000, dport: 80, flags: 0x02 })));
    const [toWorld, fromHost] = await lastFlows(2);
    expect(toWorld!.destination).toEqual({ ID: 0, identity: 2, labels: ["reserved:world"] });
    expect(toWorld!.source?.pod_name).toBe("web-0");
    expect(toWorld!.Summary).toBe("ICMPv4 EchoRequest");
    expect(fromHost!.source).toEqual({ ID: 0, identity: 1, labels: ["reserved:host"] });
    expect(fromHost!.destination?.pod_name).toBe("web-0");
  });

  test("a pod's late packets after its deletion still carry its name", async () => {
    const { ip: src, identity: srcId } = pods["web-0"]!;
    const { id: dstEp, ip: dst, identity: dstId } = pods["pay-0"]!;
    await agent.deleteEndpoint(`cni-attachment-id:pay-0:eth0`);
    datapath.emitEvent(eventRecord({ type: EVENT_DROP, subtype: DROP_POLICY, source: dstEp, srcIdentity: srcId, dstIdentity: dstId, flags: DIR_INGRESS }, tcpPacket({ src, dst, sport: 41000, dport: 8080, flags: 0x02 })));
    const [flow] = await lastFlows(1);
    expect(flow!.destination).toMatchObject({ namespace: "billing", pod_name: "pay-0", identity: dstId, labels: ["k8s:app=pay", "k8s:io.kubernetes.pod.namespace=billing"] });
  });

  test("a relabelled pod's new flows carry its new labels", async () => {
    await agent.patchEndpointLabels(String(pods["db-0"]!.id), { add: ["k8s:tier=data"] });
    const db = await agent.endpoint(String(pods["db-0"]!.id));
    pods["db-0"]!.identity = db.identity!;
    datapath.emitEvent(allowedSyn(40002));
    const [flow] = await lastFlows(1);
    expect(flow!.destination?.labels).toEqual(["k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop", "k8s:tier=data"]);
    expect(flow!.destination?.identity).toBe(db.identity);
  });
});

describe("losses, status, nodes, namespaces", () => {
  test("events the kernel lost appear in order as lost events, never silently", async () => {
    datapath.emitEvent(allowedSyn(40100));
    datapath.eventsLost += 17;
    // The hub reads the kernel's counter once a second.
    const deadline = Date.now() + 5000;
    let lost: Obj | undefined;
    while (!lost && Date.now() < deadline) {
      await Bun.sleep(200);
      lost = (await getFlows({ number: 3 })).find((r) => r.lost_events)?.lost_events;
    }
    expect(lost).toEqual({ source: 1, num_events_lost: 17 });
    expect(daemon.hubble!.stats().lost).toBe(17);
  });

  test("a reader that falls a full ring behind learns how many flows it missed", async () => {
    const responses: Obj[] = [];
    const stream = observer.GetFlows({ follow: true });
    stream.on("data", (d: Obj) => responses.push(d));
    stream.on("error", () => undefined);
    await Bun.sleep(300);
    stream.pause();
    // The ring holds 31; far more arrive while the reader does not read.
    for (let i = 0; i < 40_000; i++) datapath.emitEvent(allowedSyn(i % 60000));
    stream.resume();
    const deadline = Date.now() + 10_000;
    while (!responses.some((r) => r.lost_events?.source === 3) && Date.now() < deadline) await Bun.sleep(100);
    stream.cancel();
    const lost = responses.find((r) => r.lost_events?.source === 3)?.lost_events;
    expect(lost?.num_events_lost).toBeGreaterThan(0);
  });

  test("ServerStatus, GetNodes and GetNamespaces describe this node's ring", async () => {
    const status = await unary("ServerStatus");
    expect(status.max_flows).toBe(31);
    expect(status.num_flows).toBe(31);
    expect(status.seen_flows).toBeGreaterThan(40_000);
    expect(status.flows_rate).toBeGreaterThan(0);
    expect(status.uptime_ns).toBeGreaterThan(0);
    const { nodes } = await unary("GetNodes");
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ name: "hubble-node", state: 1, num_flows: 31, max_flows: 31 });
    datapath.emitEvent(
      eventRecord({ type: EVENT_TRACE, subtype: TRACE_FROM_LXC, source: pods["web-0"]!.id, srcIdentity: pods["web-0"]!.identity, dstIdentity: 2, reason: 0, flags: DIR_EGRESS }, icmpEchoPacket(pods["web-0"]!.ip, "198.51.100.7")),
    );
    const { namespaces } = await unary("GetNamespaces");
    expect(namespaces).toEqual([{ cluster: "default", namespace: "shop" }]);
  });

  test("onFlow hands every stored flow to another consumer", () => {
    const seen: Flow[] = [];
    const stop = daemon.hubble!.onFlow((flow) => seen.push(flow));
    datapath.emitEvent(allowedSyn(40200));
    stop();
    datapath.emitEvent(allowedSyn(40201));
    expect(seen.map((f) => f.l4?.TCP?.source_port)).toEqual([40200]);
    expect(seen[0]!.destination?.pod_name).toBe("db-0");
  });

  test("records of other types are counted, not stored; undecodable ones are counted", () => {
    const before = daemon.hubble!.stats();
    const written = daemon.hubble!.ring.written;
    const debug = allowedSyn(1);
    debug[0] = 2; // a debug message: not a flow
    datapath.emitEvent(debug);
    const broken = allowedSyn(1);
    broken[14] = 9;
    datapath.emitEvent(broken);
    expect(daemon.hubble!.ring.written).toBe(written);
    expect(daemon.hubble!.stats()).toMatchObject({ ignored: before.ignored + 1, invalid: before.invalid + 1 });
  });

  test("the socket is 0660, owned by root and the API socket's group", () => {
    const st = statSync(config.hubble.socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(config.socketGid);
  });
});

describe("configuration", () => {
  test("a ring capacity that is not 2^n-1 is refused with a clear error", () => {
    expect(() => loadAgentConfig({ "ipv4-range": "10.1.0.0/24", "hubble-event-buffer-capacity": "4096" }, {})).toThrow(
      '--hubble-event-buffer-capacity "4096": must be one less than a power of two, from 1 to 16777215 (e.g. 4095, 65535)',
    );
  });

  test("a TCP listener needs TLS material unless TLS is disabled", () => {
    expect(() => loadAgentConfig({ "ipv4-range": "10.1.0.0/24", "hubble-listen-address": ":4244" }, {})).toThrow(ConfigError);
    // Every problem at once.
    expect(() => loadAgentConfig({ "ipv4-range": "10.1.0.0/24", "hubble-listen-address": ":4244", "hubble-event-buffer-capacity": "100" }, {})).toThrow(
      '--hubble-event-buffer-capacity "100": must be one less than a power of two, from 1 to 16777215 (e.g. 4095, 65535)\n--hubble-listen-address ":4244" serves TLS: give --hubble-tls-cert-file and --hubble-tls-key-file, or --hubble-disable-tls',
    );
    const { config: plain } = loadAgentConfig({ "ipv4-range": "10.1.0.0/24", "hubble-listen-address": ":4244", "hubble-disable-tls": true }, {});
    expect(plain.hubble.listenAddress).toBe(":4244");
    expect(plain.hubble.tls).toBeUndefined();
    expect(() => loadAgentConfig({ "ipv4-range": "10.1.0.0/24", "hubble-listen-address": "4244" }, {})).toThrow(/must be \[host\]:port/);
  });

  test("Hubble's socket follows --socket-path unless given; --enable-hubble=false starts no server", async () => {
    const other = mkdtempSync(join(tmpdir(), "agent-hubble-off-"));
    try {
      const { config: off } = loadAgentConfig(
        { "ipv4-range": "10.214.0.0/24", "state-dir": join(other, "state"), "bpf-root": join(other, "bpf"), "socket-path": join(other, "cilium.sock"), "enable-hubble": false },
        {},
      );
      expect(off.hubble.socketPath).toBe(join(other, "hubble.sock"));
      const second = await startDaemon({ config: off, datapath: new RecordingDatapath(), logger: quietLogger() });
      expect(second.hubble).toBeUndefined();
      await second.stop();
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe("the TCP listener with TLS", () => {
  let tlsDir: string;
  let tlsDaemon: Daemon | undefined;
  const Observer = makeGenericClientConstructor(grpcServiceDefinition("observer.Observer"), "Observer");

  /** A CA, a server certificate for 127.0.0.1 and a client certificate, by openssl. */
  function certificates(): void {
    const sh = (script: string) => {
      const result = Bun.spawnSync(["bash", "-ec", script], { cwd: tlsDir, stdout: "pipe", stderr: "pipe" });
      if (result.exitCode !== 0) throw new Error(result.stderr.toString());
    };
    const key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    writeFileSync(join(tlsDir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    sh(`openssl req -x509 ${key} -keyout ca.key -out ca.crt -days 1 -subj /CN=hubble-test-ca 2>/dev/null
        for who in server client; do
          openssl req ${key} -keyout $who.key -out $who.csr -subj /CN=$who 2>/dev/null
          openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $who.crt -days 1 -extfile san.ext 2>/dev/null
        done`);
  }

  function client(withCertificate: boolean): Client & Record<string, any> {
    const pem = (name: string) => readFileSync(join(tlsDir, name));
    const creds = withCertificate ? credentials.createSsl(pem("ca.crt"), pem("client.key"), pem("client.crt")) : credentials.createSsl(pem("ca.crt"));
    // The certificate names localhost too: grpc-js will not send an IP address as the TLS server name.
    return new Observer(`127.0.0.1:${tlsDaemon!.hubble!.tcpPort}`, creds, { "grpc.ssl_target_name_override": "localhost", "grpc.default_authority": "localhost" }) as any;
  }

  beforeAll(async () => {
    tlsDir = mkdtempSync(join(tmpdir(), "agent-hubble-tls-"));
    certificates();
    const { config: tlsConfig } = loadAgentConfig(
      {
        "node-name": "tls-node",
        "ipv4-range": "10.215.0.0/24",
        "state-dir": join(tlsDir, "state"),
        "bpf-root": join(tlsDir, "bpf"),
        "socket-path": join(tlsDir, "cilium.sock"),
        "hubble-listen-address": "127.0.0.1:0",
        "hubble-tls-cert-file": join(tlsDir, "server.crt"),
        "hubble-tls-key-file": join(tlsDir, "server.key"),
        "hubble-tls-client-ca-files": join(tlsDir, "ca.crt"),
      },
      {},
    );
    tlsDaemon = await startDaemon({ config: tlsConfig, datapath: new RecordingDatapath(), logger: quietLogger() });
  });

  afterAll(async () => {
    await tlsDaemon?.stop();
    rmSync(tlsDir, { recursive: true, force: true });
  });

  test("a client with a certificate from the CA is served, over TLS", async () => {
    const tls = client(true);
    try {
      const nodes = await new Promise<Obj>((resolve, reject) => tls.GetNodes({}, (e: ServiceError | null, r: Obj) => (e ? reject(e) : resolve(r))));
      expect(nodes.nodes[0]).toMatchObject({ name: "tls-node", tls: { enabled: true } });
    } finally {
      tls.close();
    }
  });

  test("a client without a certificate gets no answer", async () => {
    const anonymous = client(false);
    try {
      const outcome = await Promise.race([
        new Promise<string>((resolve) => anonymous.ServerStatus({}, (e: ServiceError | null) => resolve(e ? "refused" : "served"))),
        Bun.sleep(3000).then(() => "no answer"),
      ]);
      expect(outcome).not.toBe("served");
    } finally {
      anonymous.close();
    }
  });

  test("missing certificate files stop the agent's start with the file named", async () => {
    const { config: broken } = loadAgentConfig(
      {
        "ipv4-range": "10.216.0.0/24",
        "state-dir": join(tlsDir, "state2"),
        "bpf-root": join(tlsDir, "bpf2"),
        "socket-path": join(tlsDir, "two", "cilium.sock"),
        "hubble-listen-address": "127.0.0.1:0",
        "hubble-tls-cert-file": join(tlsDir, "nope.crt"),
        "hubble-tls-key-file": join(tlsDir, "server.key"),
      },
      {},
    );
    await expect(startDaemon({ config: broken, datapath: new RecordingDatapath(), logger: quietLogger() })).rejects.toThrow(`--hubble-tls-cert-file ${join(tlsDir, "nope.crt")}: ENOENT`);
    // Nothing of it remains: its API socket is gone with it.
    expect(() => statSync(join(tlsDir, "two", "cilium.sock"))).toThrow();
  });
});
