/**
 * The routing flags through the real executable: `cilium agent` in tunnel mode (the default)
 * creates cilium_vxlan (collect-metadata, --tunnel-port) with the overlay program, keeps it across
 * a restart, and gives pods the MTU less 50 bytes through the CNI plugin; in native mode there is
 * no overlay device and pods get the whole MTU; contradictory flags stop the agent with the
 * problem named. Cross-node traffic itself is covered by tests/integration/datapath-overlay.test.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { CILIUM, TestNode } from "../helpers/cluster-node.ts";
import { ipJson, run, TestNamespaces, uniquePrefix } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const prefix = uniquePrefix("trm");
const octet = (process.pid % 200) + 30;

interface VxlanLink {
  ifindex: number;
  mtu: number;
  linkinfo: { info_kind: string; info_data: { port: number; external?: boolean; learning?: boolean } };
}

function podMtu(netns: string): number {
  return ipJson<{ mtu: number }[]>(["link", "show", "eth0"], netns)[0]!.mtu;
}

describePrivileged("routing mode flags (real agent, real CNI plugin)", () => {
  const namespaces = new TestNamespaces(prefix);
  let tunnel: TestNode;
  let native: TestNode;

  beforeAll(async () => {
    tunnel = new TestNode(namespaces, { name: "tun", podCidr: `10.219.${octet}.0/25`, extraAgentArgs: ["--tunnel-port", "8479"] });
    native = new TestNode(namespaces, {
      name: "nat",
      podCidr: `10.219.${octet}.128/25`,
      extraAgentArgs: ["--routing-mode", "native", "--auto-direct-node-routes", "--ipv4-native-routing-cidr", `10.219.${octet}.0/24`],
    });
    await tunnel.startAgent();
    await native.startAgent();
  });

  afterAll(async () => {
    await tunnel?.destroy();
    await native?.destroy();
    namespaces.removeAll();
  });

  test("tunnel mode: cilium_vxlan is external, on --tunnel-port, no learning, with the pods' MTU", () => {
    const [link] = ipJson<VxlanLink[]>(["-d", "link", "show", "cilium_vxlan"], tunnel.netns);
    expect(link!.linkinfo.info_kind).toBe("vxlan");
    expect(link!.linkinfo.info_data).toMatchObject({ port: 8479, external: true, learning: false });
    expect(link!.mtu).toBe(1450);
  });

  test("tunnel mode: the agent reports its routing and the overlay program is attached", async () => {
    const config = (await tunnel.api("GET", "/config")).body;
    expect(config).toMatchObject({ "routing-mode": "tunnel", "tunnel-protocol": "vxlan", "tunnel-port": 8479, mtu: 1500 });
    const status = tunnel.cilium(["status", "--verbose"]).stdout;
    expect(status).toContain("tunnel (vxlan, cilium_vxlan, port 8479)");
    expect(status).toMatch(/cil_from_overlay \(id \d+\) on cilium_vxlan\/ingress/);
  });

  test("tunnel mode: a pod gets --mtu (1500) less 50 bytes of VXLAN", () => {
    const pod = tunnel.addPod("p0");
    expect(podMtu(pod.netns)).toBe(1450);
  });

  test("tunnel mode: a restarted agent keeps the same cilium_vxlan", async () => {
    const before = ipJson<VxlanLink[]>(["link", "show", "cilium_vxlan"], tunnel.netns)[0]!.ifindex;
    await tunnel.stopAgent();
    await tunnel.startAgent();
    expect(ipJson<VxlanLink[]>(["link", "show", "cilium_vxlan"], tunnel.netns)[0]!.ifindex).toBe(before);
    // Restore's stale clean-up keeps the overlay's program link.
    expect(tunnel.cilium(["status", "--verbose"]).stdout).toMatch(/cil_from_overlay \(id \d+\) on cilium_vxlan\/ingress/);
    expect(run(["ls", `${tunnel.bpfRoot}/cilium/links`]).stdout).toContain("cilium_vxlan-ingress");
  });

  test("native mode: no overlay device, pods get the whole MTU", async () => {
    expect(run(["ip", "-n", native.netns, "link", "show", "cilium_vxlan"], { allowFailure: true }).exitCode).not.toBe(0);
    expect((await native.api("GET", "/config")).body).toMatchObject({ "routing-mode": "native", "auto-direct-node-routes": true });
    const pod = native.addPod("p0");
    expect(podMtu(pod.netns)).toBe(1500);
  });

  test("contradictory routing flags stop the agent with the problem named", () => {
    const result = run([CILIUM, "agent", "--ipv4-range", "10.9.0.0/24", "--auto-direct-node-routes", "--tunnel-protocol", "geneve"], { allowFailure: true });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('--tunnel-protocol "geneve": geneve is not supported; use vxlan');
    const second = run([CILIUM, "agent", "--ipv4-range", "10.9.0.0/24", "--auto-direct-node-routes"], { allowFailure: true });
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr).toContain("--auto-direct-node-routes needs --routing-mode native");
  });
});
