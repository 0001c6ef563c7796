/**
 * The real CNI plugin, driven exactly as a container runtime drives it: a fresh process per
 * command, CNI_* in the environment, the network config on stdin, against pod namespaces made
 * here and a fake agent on a unix socket. The plugin is `bun src/main.ts cni`, or the built
 * binary when it is newer than every source file (or CNI_PLUGIN_UNDER_TEST names one).
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { hostInterfaceName } from "../../src/cni/attachment.ts";
import { FakeAgent } from "../helpers/fake-agent.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const root = join(import.meta.dir, "../..");
const prefix = `tcni${process.pid % 1000}`;
let sequence = 0;

function pluginCommand(): string[] {
  if (process.env.CNI_PLUGIN_UNDER_TEST) return [process.env.CNI_PLUGIN_UNDER_TEST];
  const binary = join(root, "dist/cilium-cni");
  try {
    const built = statSync(join(root, "dist/cilium")).mtimeMs;
    const newestSource = Math.max(
      ...readdirSync(join(root, "src"), { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => statSync(join(entry.parentPath, entry.name)).mtimeMs),
    );
    if (built > newestSource) return [binary];
  } catch {
    // No build: run the sources.
  }
  return [process.execPath, join(root, "src/main.ts"), "cni"];
}
const plugin = pluginCommand();

interface Invocation {
  containerId: string;
  netns?: string;
  ifname?: string;
  args?: string;
}

interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

async function cni(command: string, invocation: Invocation, config: Record<string, unknown>): Promise<PluginRun> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: invocation.containerId,
    CNI_IFNAME: invocation.ifname ?? "eth0",
    CNI_PATH: "/opt/cni/bin",
  };
  if (invocation.netns !== undefined) env.CNI_NETNS = invocation.netns;
  if (invocation.args !== undefined) env.CNI_ARGS = invocation.args;
  // Asynchronous on purpose: the fake agent answers from this very event loop.
  const child = Bun.spawn(plugin, { env, stdin: new Blob([JSON.stringify(config)]), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  let json: unknown;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    throw new Error(`plugin printed invalid JSON (exit ${code}): ${stdout}\nstderr: ${stderr}`);
  }
  return { code, stdout, stderr, json };
}

function ip(...args: string[]): any {
  const r = Bun.spawnSync(["ip", ...args]);
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString()}`);
  const out = r.stdout.toString().trim();
  return out ? JSON.parse(out) : [];
}

function ipQuiet(...args: string[]): boolean {
  return Bun.spawnSync(["ip", ...args], { stderr: "ignore", stdout: "ignore" }).exitCode === 0;
}

function hostLinkExists(name: string): boolean {
  return ipQuiet("link", "show", "dev", name);
}

let agent: FakeAgent;
const namespaces: string[] = [];
const containers: string[] = [];

/** A fresh pod namespace; returns its path as a runtime would pass it. */
function pod(): { name: string; path: string; containerId: string } {
  const name = `${prefix}-${++sequence}`;
  if (!ipQuiet("netns", "add", name)) throw new Error(`ip netns add ${name} failed`);
  namespaces.push(name);
  const containerId = `${name}-ctr`;
  containers.push(containerId);
  return { name, path: `/var/run/netns/${name}`, containerId };
}

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: "1.0.0", name: "tcni", type: "cilium-cni", "socket-path": agent.socketPath, ...extra };
}

function cleanUp(): void {
  for (const containerId of containers.splice(0)) {
    const name = hostInterfaceName({ containerId, ifname: "eth0" });
    if (hostLinkExists(name)) ipQuiet("link", "del", "dev", name);
  }
  for (const name of namespaces.splice(0)) ipQuiet("netns", "del", name);
}

function addresses(ns: string, dev: string): string[] {
  return ip("-n", ns, "-j", "addr", "show", "dev", dev).flatMap((l: any) => l.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`));
}

function routes(ns: string): any[] {
  return ip("-n", ns, "-j", "route", "show");
}

describePrivileged("cilium-cni against a fake agent", () => {
  beforeAll(() => {
    for (const tool of ["ip"]) if (!Bun.which(tool)) throw new Error(`${tool} is required`);
  });
  beforeEach(() => {
    agent = new FakeAgent();
  });
  afterEach(() => {
    agent.stop();
    cleanUp();
  });
  afterAll(cleanUp);

  test("ADD sets up the pod and the host veth, registers the endpoint and answers a 1.0.0 result", async () => {
    const p = pod();
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path, args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0" }, config());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);

    const hostName = hostInterfaceName({ containerId: p.containerId, ifname: "eth0" });
    const [hostLink] = ip("-j", "-d", "link", "show", "dev", hostName);
    const [podLink] = ip("-n", p.name, "-j", "-d", "link", "show", "dev", "eth0");
    const podIp = [...agent.allocations.keys()][0]!;
    expect(agent.allocations.get(podIp)).toBe(`${p.containerId}:eth0`);

    expect(r.json).toEqual({
      cniVersion: "1.0.0",
      interfaces: [
        { name: hostName, mac: hostLink.address },
        { name: "eth0", mac: podLink.address, sandbox: p.path },
      ],
      ips: [{ address: `${podIp}/32`, gateway: agent.gateway, interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: agent.gateway }],
      dns: {},
    });

    // Pod side: address, MTU from the agent, routes, lo up.
    expect(addresses(p.name, "eth0")).toEqual([`${podIp}/32`]);
    expect(podLink.mtu).toBe(1420);
    expect(podLink.operstate).toBe("UP");
    expect(podLink.linkinfo.info_kind).toBe("veth");
    const podRoutes = routes(p.name);
    expect(podRoutes).toContainEqual(expect.objectContaining({ dst: "default", gateway: agent.gateway, dev: "eth0" }));
    expect(podRoutes).toContainEqual(expect.objectContaining({ dst: agent.gateway, dev: "eth0", scope: "link" }));
    const [lo] = ip("-n", p.name, "-j", "link", "show", "dev", "lo");
    expect(lo.flags).toContain("UP");

    // Host side: up, same MTU, the pod's peer, no leftover temporary name.
    expect(hostLink.flags).toContain("UP");
    expect(hostLink.mtu).toBe(1420);
    expect(podLink.link_index).toBe(hostLink.ifindex);
    expect(ip("-n", p.name, "-j", "link", "show").map((l: any) => l.ifname).sort()).toEqual(["eth0", "lo"]);
    await expect(Bun.file(`/proc/sys/net/ipv4/conf/${hostName}/rp_filter`).text()).resolves.toBe("0\n");

    // The endpoint the agent got.
    const endpoint = agent.endpoints.get(`cni-attachment-id:${p.containerId}:eth0`)!;
    expect(endpoint).toMatchObject({
      "container-id": p.containerId,
      "container-interface-name": "eth0",
      "interface-name": hostName,
      "interface-index": hostLink.ifindex,
      mac: podLink.address,
      "host-mac": hostLink.address,
      addressing: { ipv4: podIp },
      "netns-path": p.path,
      "k8s-namespace": "shop",
      "k8s-pod-name": "web-0",
      labels: ["k8s:io.kubernetes.pod.namespace=shop"],
    });
    // One request: the agent does the plumbing.
    expect(agent.requests).toEqual([
      {
        method: "PUT",
        path: `/v1/cni/attachment/${encodeURIComponent(`${p.containerId}:eth0`)}`,
        body: { "netns-path": p.path, "k8s-namespace": "shop", "k8s-pod-name": "web-0", labels: ["k8s:io.kubernetes.pod.namespace=shop"] },
      },
    ]);
  });

  test("results follow the config's cniVersion", async () => {
    for (const version of ["0.3.0", "0.3.1", "0.4.0", "1.1.0"]) {
      const p = pod();
      const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config({ cniVersion: version }));
      expect(r.code).toBe(0);
      expect(r.json.cniVersion).toBe(version);
      const [entry] = r.json.ips;
      if (version.startsWith("0.")) expect(entry.version).toBe("4");
      else expect(entry.version).toBeUndefined();
      if (version === "1.1.0") expect(r.json.interfaces.map((i: any) => i.mtu)).toEqual([1420, 1420]);
      else expect(r.json.interfaces[0].mtu).toBeUndefined();
    }
  });

  test("two pods get different IPs; the config's mtu overrides the agent's", async () => {
    const a = pod();
    const b = pod();
    const ra = await cni("ADD", { containerId: a.containerId, netns: a.path }, config());
    const rb = await cni("ADD", { containerId: b.containerId, netns: b.path }, config({ mtu: 1300 }));
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    expect(ra.json.ips[0].address).not.toBe(rb.json.ips[0].address);
    expect(ip("-n", b.name, "-j", "link", "show", "dev", "eth0")[0].mtu).toBe(1300);
  });

  test("prevResult is carried into the result and ours is appended", async () => {
    const p = pod();
    const prevResult = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "bond0", mac: "02:00:00:00:00:01", sandbox: p.path }],
      ips: [{ address: "192.168.50.2/24", gateway: "192.168.50.1", interface: 0 }],
      routes: [{ dst: "192.168.0.0/16", gw: "192.168.50.1" }],
      dns: { nameservers: ["192.168.50.53"] },
    };
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config({ prevResult, dns: { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] } }));
    expect(r.code).toBe(0);
    expect(r.json.interfaces.map((i: any) => i.name)).toEqual(["bond0", hostInterfaceName({ containerId: p.containerId, ifname: "eth0" }), "eth0"]);
    expect(r.json.ips).toEqual([prevResult.ips[0], { address: expect.stringMatching(/\/32$/), gateway: agent.gateway, interface: 2 }]);
    expect(r.json.routes).toEqual([prevResult.routes[0], { dst: "0.0.0.0/0", gw: agent.gateway }]);
    expect(r.json.dns).toEqual({ nameservers: ["192.168.50.53", "10.96.0.10"], search: ["svc.cluster.local"] });
  });

  test("DEL removes the veth, the endpoint and the IP; DEL again and DEL without the netns succeed", async () => {
    const p = pod();
    const attachment = { containerId: p.containerId, netns: p.path };
    expect((await cni("ADD", attachment, config())).code).toBe(0);
    const hostName = hostInterfaceName({ containerId: p.containerId, ifname: "eth0" });
    expect(hostLinkExists(hostName)).toBe(true);

    const r = await cni("DEL", attachment, config());
    expect(r).toMatchObject({ code: 0, stdout: "" });
    expect(hostLinkExists(hostName)).toBe(false);
    expect(ipQuiet("-n", p.name, "link", "show", "dev", "eth0")).toBe(false);
    expect(agent.endpoints.size).toBe(0);
    expect(agent.allocations.size).toBe(0);

    expect((await cni("DEL", attachment, config())).code).toBe(0);

    // A pod whose namespace is already gone, and one with no CNI_NETNS at all.
    const q = pod();
    expect((await cni("ADD", { containerId: q.containerId, netns: q.path }, config())).code).toBe(0);
    ipQuiet("netns", "del", q.name);
    expect((await cni("DEL", { containerId: q.containerId, netns: q.path }, config())).code).toBe(0);
    expect(hostLinkExists(hostInterfaceName({ containerId: q.containerId, ifname: "eth0" }))).toBe(false);
    expect(agent.allocations.size).toBe(0);
    expect((await cni("DEL", { containerId: q.containerId }, config())).code).toBe(0);
  });

  test("DEL with the agent down still removes the veth and answers try-again-later", async () => {
    const p = pod();
    expect((await cni("ADD", { containerId: p.containerId, netns: p.path }, config())).code).toBe(0);
    const r = await cni("DEL", { containerId: p.containerId, netns: p.path }, config({ "socket-path": "/nonexistent/cilium.sock" }));
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain("/nonexistent/cilium.sock");
    expect(hostLinkExists(hostInterfaceName({ containerId: p.containerId, ifname: "eth0" }))).toBe(false);
  });

  /** Nothing of the attachment is left: no veth, no pod interface, no IP, no endpoint. */
  function expectNothingLeft(p: { name: string; containerId: string }): void {
    expect(hostLinkExists(hostInterfaceName({ containerId: p.containerId, ifname: "eth0" }))).toBe(false);
    expect(ip("-n", p.name, "-j", "link", "show").map((l: any) => l.ifname)).toEqual(["lo"]);
    expect(agent.allocations.size).toBe(0);
    expect(agent.endpoints.size).toBe(0);
  }

  test("IPAM exhausted: code 100 with the agent's message, nothing created", async () => {
    const p = pod();
    agent.exhaust();
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ cniVersion: "1.0.0", code: 100 });
    expect(r.json.msg).toContain(`${p.containerId}:eth0`);
    expect(r.json.msg).toContain(`IPAM pool ${agent.cidr} exhausted`);
    agent.allocations.clear();
    expectNothingLeft(p);
  });

  test("endpoint creation fails: code 101, veth and IP rolled back", async () => {
    const p = pod();
    agent.fail("putEndpoint", 500, "regeneration failed: policy map full");
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    expect(r.json.code).toBe(101);
    expect(r.json.msg).toContain("regeneration failed: policy map full");
    expect(r.json.msg).toContain(`cni-attachment-id:${p.containerId}:eth0`);
    expect(r.json.details).toBeUndefined();
    expectNothingLeft(p);
  });

  test("what a rollback cannot undo is reported in the error's details", async () => {
    const p = pod();
    agent.fail("putEndpoint", 500, "regeneration failed");
    agent.fail("releaseIp", 500, "ipam store unavailable");
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    expect(r.json.code).toBe(101);
    expect(r.json.details).toStartWith("rollback incomplete: release IP 10.244.7.2: ");
    expect(r.json.details).toContain("ipam store unavailable");
    expect(hostLinkExists(hostInterfaceName({ containerId: p.containerId, ifname: "eth0" }))).toBe(false);
  });

  test("interface setup fails after IPAM: code 102, IP released", async () => {
    const p = pod();
    agent.mtu = 99_999; // above what a veth accepts: creating the pair fails
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    expect(r.json.code).toBe(102);
    expect(r.json.msg).toContain("create veth");
    expectNothingLeft(p);
  });

  test("a missing netns is code 3 and asks the agent for nothing", async () => {
    const r = await cni("ADD", { containerId: `${prefix}-gone`, netns: `/var/run/netns/${prefix}-gone` }, config());
    expect(r.json.code).toBe(3);
    expect(r.json.msg).toContain(`/var/run/netns/${prefix}-gone`);
    expect(agent.requests).toEqual([]);
  });

  test("the host's own namespace and a file that is no namespace are refused (code 4)", async () => {
    expect((await cni("ADD", { containerId: `${prefix}-host`, netns: "/proc/self/ns/net" }, config())).json.code).toBe(4);
    const r = await cni("ADD", { containerId: `${prefix}-file`, netns: agent.socketPath.replace("cilium.sock", "") }, config());
    expect(r.json.code).toBe(4);
    expect(agent.requests).toEqual([]);
  });

  test("an interface name taken in the pod is refused before IPAM", async () => {
    const p = pod();
    expect(ipQuiet("-n", p.name, "link", "add", "eth0", "type", "bridge")).toBe(true);
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    expect(r.json.code).toBe(102);
    expect(r.json.msg).toContain("eth0 already exists");
    expect(agent.allocations.size).toBe(0);
    expect(ipQuiet("-n", p.name, "link", "show", "dev", "eth0")).toBe(true);
    // The runtime's DEL after the failed ADD leaves the foreign interface alone.
    expect((await cni("DEL", { containerId: p.containerId, netns: p.path }, config())).code).toBe(0);
    expect(ipQuiet("-n", p.name, "link", "show", "dev", "eth0")).toBe(true);
  });

  test("ADD of an existing attachment is refused (103) and leaves it intact", async () => {
    const p = pod();
    const first = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    expect(first.code).toBe(0);
    const again = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    expect(again.json.code).toBe(103);
    expect(again.json.msg).toContain(hostInterfaceName({ containerId: p.containerId, ifname: "eth0" }));
    expect(agent.endpoints.size).toBe(1);
    expect([...agent.allocations.keys()].map((a) => `${a}/32`)).toEqual([first.json.ips[0].address]);
    expect(addresses(p.name, "eth0")).toEqual([first.json.ips[0].address]);
    expect((await cni("CHECK", { containerId: p.containerId, netns: p.path }, config({ prevResult: first.json }))).code).toBe(0);
  });

  test("a dead agent socket is code 11 naming the socket, and leaves nothing", async () => {
    const p = pod();
    const r = await cni("ADD", { containerId: p.containerId, netns: p.path }, config({ "socket-path": "/nonexistent/cilium.sock" }));
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain("/nonexistent/cilium.sock");
    expectNothingLeft(p);
  });

  test("STATUS: silent success when the agent is healthy, 50 naming the socket when not", async () => {
    const status = (extra: Record<string, unknown> = {}) => cni("STATUS", { containerId: "" }, config({ cniVersion: "1.1.0", ...extra }));
    expect(await status()).toMatchObject({ code: 0, stdout: "" });
    const down = await status({ "socket-path": "/nonexistent/cilium.sock" });
    expect(down.json.code).toBe(50);
    expect(down.json.msg).toContain("/nonexistent/cilium.sock");
    agent.fail("healthz", 503, "kvstore not connected");
    const unhealthy = await status();
    expect(unhealthy.json.code).toBe(50);
    expect(unhealthy.json.msg).toContain("kvstore not connected");
    expect((await cni("STATUS", { containerId: "" }, config({ cniVersion: "1.0.0" }))).json.code).toBe(1);
  });

  test("CHECK passes on a good attachment and fails (104) on a broken one", async () => {
    const p = pod();
    const attachment = { containerId: p.containerId, netns: p.path };
    const added = await cni("ADD", attachment, config());
    const check = (extra: Record<string, unknown> = {}) => cni("CHECK", attachment, config({ prevResult: added.json, ...extra }));
    expect(await check()).toMatchObject({ code: 0, stdout: "" });
    expect((await cni("CHECK", attachment, config())).code).toBe(0);

    const wrongMac = structuredClone(added.json);
    wrongMac.interfaces[1].mac = "02:00:00:00:00:99";
    const mac = await check({ prevResult: wrongMac });
    expect(mac.json.code).toBe(104);
    expect(mac.json.msg).toContain("MAC");

    expect(ipQuiet("-n", p.name, "route", "del", "default")).toBe(true);
    const route = await check();
    expect(route.json.code).toBe(104);
    expect(route.json.msg).toContain("no default route");

    agent.endpoints.clear();
    const gone = await check();
    expect(gone.json.code).toBe(104);
    expect(gone.json.msg).toContain(`cni-attachment-id:${p.containerId}:eth0`);

    expect((await cni("CHECK", attachment, config({ cniVersion: "0.3.1" }))).json.code).toBe(1);
  });

  test("CHECK waits for an endpoint that is still regenerating, and fails on one going away", async () => {
    const p = pod();
    agent.endpointState = "regenerating";
    const added = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    const endpoint = agent.endpoints.get(`cni-attachment-id:${p.containerId}:eth0`)!;
    setTimeout(() => (endpoint.state = "ready"), 300);
    expect((await cni("CHECK", { containerId: p.containerId, netns: p.path }, config({ prevResult: added.json }))).code).toBe(0);
    endpoint.state = "disconnecting";
    const r = await cni("CHECK", { containerId: p.containerId, netns: p.path }, config({ prevResult: added.json }));
    expect(r.json.code).toBe(104);
    expect(r.json.msg).toContain("disconnecting");
  });

  test("CHECK of a host veth that is down fails", async () => {
    const p = pod();
    const added = await cni("ADD", { containerId: p.containerId, netns: p.path }, config());
    const hostName = hostInterfaceName({ containerId: p.containerId, ifname: "eth0" });
    expect(ipQuiet("link", "set", "dev", hostName, "down")).toBe(true);
    const r = await cni("CHECK", { containerId: p.containerId, netns: p.path }, config({ prevResult: added.json }));
    expect(r.json.code).toBe(104);
    expect(r.json.msg).toContain(`${hostName} is down`);
  });

  test("GC removes only the attachments not listed as valid", async () => {
    const pods = [pod(), pod(), pod()];
    for (const p of pods) expect((await cni("ADD", { containerId: p.containerId, netns: p.path }, config())).code).toBe(0);
    const [keep1, keep2, stale] = pods as [ReturnType<typeof pod>, ReturnType<typeof pod>, ReturnType<typeof pod>];
    // An endpoint of the agent's own (no container): never garbage.
    agent.endpoints.set("health", { ...agent.endpoints.get(`cni-attachment-id:${keep1.containerId}:eth0`)!, id: 999, "container-id": "", "container-interface-name": "" });
    const valid = [keep1, keep2].map((p) => ({ containerID: p.containerId, ifname: "eth0" }));
    const r = await cni("GC", { containerId: "" }, config({ cniVersion: "1.1.0", "cni.dev/valid-attachments": valid }));
    expect(r).toMatchObject({ code: 0, stdout: "" });
    expect([...agent.endpoints.values()].map((e) => e["container-id"]).sort()).toEqual(["", keep1.containerId, keep2.containerId].sort());
    expect([...agent.allocations.values()].sort()).toEqual([`${keep1.containerId}:eth0`, `${keep2.containerId}:eth0`].sort());
    expect(hostLinkExists(hostInterfaceName({ containerId: stale.containerId, ifname: "eth0" }))).toBe(false);
    for (const p of [keep1, keep2]) expect(hostLinkExists(hostInterfaceName({ containerId: p.containerId, ifname: "eth0" }))).toBe(true);

    const missingList = await cni("GC", { containerId: "" }, config({ cniVersion: "1.1.0" }));
    expect(missingList.json.code).toBe(7);
  });
});
