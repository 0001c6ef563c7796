/**
 * `cilium monitor` end to end: the real agent (dist/cilium) in a node namespace, two pods attached
 * by the real CNI plugin, a policy imported with `cilium policy import`, real TCP connections,
 * and several `dist/cilium monitor` processes reading the agent's monitor socket with different
 * filters. Expected lines are written from upstream's formats and what the policy means.
 */
import type { Subprocess } from "bun";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CILIUM, TestNode, type Pod } from "../helpers/cluster-node.ts";
import { run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";
import { probeAsync, startEchoServers, type EchoServer } from "../helpers/traffic.ts";

const prefix = uniquePrefix("tmon");
const octet = (process.pid % 200) + 30;
const podCidr = `10.207.${octet}.0/24`;

/** A running `cilium monitor`: its output so far, and how it ended. */
class MonitorProcess {
  private readonly child: Subprocess<"ignore", "pipe", "pipe">;
  stdout = "";
  stderr = "";
  private readonly done: Promise<void>;

  constructor(argv: string[]) {
    this.child = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const collect = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this[into] += decoder.decode(chunk, { stream: true });
    };
    this.done = Promise.all([collect(this.child.stdout, "stdout"), collect(this.child.stderr, "stderr")]).then(() => undefined);
  }

  /** Waits until `predicate` holds for the output so far (or the timeout passes). */
  async waitFor(predicate: (m: MonitorProcess) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this) && Date.now() < deadline && this.child.exitCode === null) await Bun.sleep(25);
  }

  lines(): string[] {
    return this.stdout.split("\n").filter((l) => l !== "");
  }

  async exit(): Promise<number> {
    const code = await this.child.exited;
    await this.done;
    return code;
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill("SIGINT");
  }
}

describePrivileged("cilium monitor against a real agent", () => {
  const namespaces = new TestNamespaces(prefix);
  const monitors: MonitorProcess[] = [];
  let node: TestNode;
  let client: Pod;
  let server: Pod;
  let echo: EchoServer | undefined;
  const ids = new Map<string, { id: number; identity: number }>();

  beforeAll(async () => {
    node = new TestNode(namespaces, { name: "n1", podCidr });
    await node.startAgent();
    client = node.addPod("client", "shop", { app: "client" });
    server = node.addPod("server", "shop", { app: "server" });
    node.addPod("bystander", "shop", { app: "bystander" });
    echo = await startEchoServers(server.netns, [
      { protocol: "tcp", port: 80 },
      { protocol: "tcp", port: 8080 },
    ]);
    const { body } = await node.api("GET", "/endpoint");
    for (const endpoint of body) ids.set(endpoint["k8s-pod-name"], { id: endpoint.id, identity: endpoint.identity });
    const policy = join(node.dir, "server-ingress.yaml");
    writeFileSync(
      policy,
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-from-client
  namespace: shop
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client } }]
      toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
    );
    const imported = node.cilium(["policy", "import", policy]);
    const revision = /^Revision: (\d+)$/m.exec(imported.stdout)![1]!;
    node.cilium(["policy", "wait", revision, "--max-wait-time", "10s"]);
  }, 120_000);

  afterAll(async () => {
    for (const m of monitors) m.stop();
    echo?.stop();
    await node?.destroy();
    namespaces.removeAll();
  });

  /** `cilium monitor` in the node's network namespace (interface names resolve there), via -H. */
  async function startMonitor(args: string[]): Promise<MonitorProcess> {
    const monitor = new MonitorProcess(node.nodeArgv([CILIUM, "monitor", "-H", `unix://${node.socketPath}`, ...args]));
    monitors.push(monitor);
    await monitor.waitFor((m) => m.stderr.includes("Press Ctrl-C to quit"));
    expect(monitor.stderr).toBe("Press Ctrl-C to quit\n");
    return monitor;
  }

  test("the monitor socket sits next to the API socket: 0660, the API socket's group", () => {
    const monitorSocket = join(node.dir, "monitor1_2.sock");
    const stat = statSync(monitorSocket);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o660);
    expect(stat.gid).toBe(statSync(node.socketPath).gid);
  });

  test("allowed and denied connections: policy verdicts, drops and traces as upstream prints them; -t filters; -j parses", async () => {
    const all = await startMonitor([]);
    const verdicts = await startMonitor(["-t", "policy-verdict"]);
    const dropsJson = await startMonitor(["--type", "drop", "-j"]);
    const serverOnly = await startMonitor(["-t", "policy-verdict", "-t", "drop", "--related-to", String(ids.get("server")!.id)]);
    const unrelated = await startMonitor(["--related-to", String(ids.get("bystander")!.id)]);

    expect(await probeAsync(client.netns, "tcp", server.ip, 80, 1500)).toBe(client.ip);
    expect(await probeAsync(client.netns, "tcp", server.ip, 8080, 1500)).toBeNull();

    const s = ids.get("server")!;
    const c = ids.get("client")!;
    const esc = (ip: string) => ip.replaceAll(".", "\\.");
    const allowLine = new RegExp(
      `^Policy verdict log: flow 0x[0-9a-f]+ local EP ID ${s.id}, remote ID ${c.identity}, proto 6, ingress, action allow, auth: disabled, match L3-L4, ${esc(client.ip)}:\\d+ -> ${esc(server.ip)}:80 tcp SYN$`,
    );
    const denyLine = new RegExp(
      `^Policy verdict log: flow 0x[0-9a-f]+ local EP ID ${s.id}, remote ID ${c.identity}, proto 6, ingress, action deny, auth: disabled, match none, ${esc(client.ip)}:\\d+ -> ${esc(server.ip)}:8080 tcp SYN$`,
    );
    const dropLine = new RegExp(
      `^xx drop \\(Policy denied\\) flow 0x[0-9a-f]+ to endpoint ${s.id}, ifindex \\d+, file bpf_lxc\\.c:\\d+, , identity ${c.identity}->${s.identity}: ${esc(client.ip)}:\\d+ -> ${esc(server.ip)}:8080 tcp SYN$`,
    );
    const traceLine = new RegExp(
      `^-> endpoint ${s.id} flow 0x[0-9a-f]+ , identity ${c.identity}->${s.identity} state new ifindex lxc\\w+ orig-ip 0\\.0\\.0\\.0: ${esc(client.ip)}:\\d+ -> ${esc(server.ip)}:80 tcp SYN$`,
    );

    await verdicts.waitFor((m) => m.lines().some((l) => allowLine.test(l)) && m.lines().some((l) => denyLine.test(l)));
    await all.waitFor((m) => m.lines().some((l) => dropLine.test(l)) && m.lines().some((l) => traceLine.test(l)));
    await dropsJson.waitFor((m) => m.lines().length > 0);
    await serverOnly.waitFor((m) => m.lines().some((l) => dropLine.test(l)));

    // -t policy-verdict: the allow once (new connection only), the denied SYN each time it was sent, nothing else.
    const verdictLines = verdicts.lines();
    expect(verdictLines.filter((l) => allowLine.test(l))).toHaveLength(1);
    expect(verdictLines.filter((l) => denyLine.test(l)).length).toBeGreaterThanOrEqual(1);
    expect(verdictLines.every((l) => l.startsWith("Policy verdict log: "))).toBe(true);
    // Only the server's ingress is enforced: the client's egress is never judged, so never reported.
    expect(verdictLines.every((l) => l.includes(", ingress, "))).toBe(true);

    // No filter: verdicts, drops and traces together.
    const allLines = all.lines();
    expect(allLines.some((l) => allowLine.test(l))).toBe(true);
    expect(allLines.some((l) => dropLine.test(l))).toBe(true);
    expect(allLines.some((l) => traceLine.test(l))).toBe(true);

    // -t drop -j: every line is a JSON drop object.
    const drops = dropsJson.lines().map((l) => JSON.parse(l));
    expect(drops.length).toBeGreaterThanOrEqual(1);
    expect(drops.every((d) => d.type === "drop")).toBe(true);
    expect(drops).toContainEqual(
      expect.objectContaining({ type: "drop", reason: "Policy denied", dstID: s.id, srcLabel: c.identity, dstLabel: s.identity, summary: expect.objectContaining({ l3: { src: client.ip, dst: server.ip }, l4: expect.objectContaining({ dst: "8080" }) }) }),
    );

    // Two -t flags and --related-to: verdicts and drops of the server's traffic, no traces.
    const serverLines = serverOnly.lines();
    expect(serverLines.some((l) => dropLine.test(l)) && serverLines.some((l) => allowLine.test(l))).toBe(true);
    expect(serverLines.every((l) => l.startsWith("Policy verdict log: ") || l.startsWith("xx drop "))).toBe(true);

    // --related-to another endpoint: none of this traffic.
    await Bun.sleep(200);
    expect(unrelated.lines()).toEqual([]);
  }, 60_000);

  test("a dead or missing socket is a clear error naming the path; a stopped agent ends the stream", async () => {
    const missing = run([CILIUM, "monitor", "--monitor-socket", join(node.dir, "nope.sock")], { allowFailure: true });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(`cannot open the monitor socket ${join(node.dir, "nope.sock")}: ENOENT (no such socket): is the agent running? (--monitor-socket selects another)\n`);

    const attached = await startMonitor([]);
    await node.stopAgent();
    expect(await attached.exit()).toBe(1);
    expect(attached.stderr).toContain(`the agent closed the monitor connection on ${join(node.dir, "monitor1_2.sock")}`);

    const afterStop = run([CILIUM, "monitor", "-H", `unix://${node.socketPath}`], { allowFailure: true });
    expect(afterStop.exitCode).toBe(1);
    expect(afterStop.stderr).toContain(`cannot open the monitor socket ${join(node.dir, "monitor1_2.sock")}: ENOENT`);
  }, 30_000);
});

describePrivileged("cilium monitor with --monitor-aggregation none", () => {
  const namespaces = new TestNamespaces(`${prefix}n`);
  let node: TestNode;
  let echo: EchoServer | undefined;
  let monitor: MonitorProcess | undefined;

  beforeAll(async () => {
    node = new TestNode(namespaces, { name: "n2", podCidr: `10.208.${octet}.0/24`, extraAgentArgs: ["--monitor-aggregation", "none"] });
    await node.startAgent();
  }, 60_000);

  afterAll(async () => {
    monitor?.stop();
    echo?.stop();
    await node?.destroy();
    namespaces.removeAll();
  });

  test("every judged packet of a connection is reported, and receive-side traces appear", async () => {
    const client = node.addPod("client", "shop", { app: "client" });
    const server = node.addPod("server", "shop", { app: "server" });
    echo = await startEchoServers(server.netns, [{ protocol: "tcp", port: 80 }]);
    const policy = join(node.dir, "allow.yaml");
    writeFileSync(
      policy,
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: server-from-client, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client } }]
      toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
    );
    const revision = /^Revision: (\d+)$/m.exec(node.cilium(["policy", "import", policy]).stdout)![1]!;
    node.cilium(["policy", "wait", revision, "--max-wait-time", "10s"]);

    monitor = new MonitorProcess(node.nodeArgv([CILIUM, "monitor", "-H", `unix://${node.socketPath}`]));
    await monitor.waitFor((m) => m.stderr.includes("Press Ctrl-C to quit"));
    expect(await probeAsync(client.netns, "tcp", server.ip, 80, 1500)).toBe(client.ip);
    const allow = (l: string) => l.startsWith("Policy verdict log: ") && l.includes(", ingress, action allow, auth: disabled, match L3-L4, ") && l.includes(` -> ${server.ip}:80 tcp `);
    // SYN, ACK, request, FIN, ACK at least: each is judged (not a reply) and reported at "none".
    await monitor.waitFor((m) => m.lines().filter(allow).length >= 4);
    expect(monitor.lines().filter(allow).length).toBeGreaterThanOrEqual(4);
    expect(monitor.lines().filter(allow).some((l) => l.endsWith(" tcp SYN"))).toBe(true);
    expect(monitor.lines().filter(allow).some((l) => !l.endsWith(" tcp SYN"))).toBe(true);
    // From-endpoint traces are written only at "none".
    expect(monitor.lines().some((l) => l.startsWith("<- endpoint ") && l.includes(`${client.ip}:`))).toBe(true);
  }, 60_000);
});
