/**
 * scripts/cluster, as the demo and users drive it: a 2-node cluster (etcd, operator, relay, an
 * agent per node), pods on both nodes talking through the overlay, a policy imported on one node
 * enforced on the other, flows of both nodes through the relay with the real `hubble` binary,
 * status, env — and a down that leaves no namespace, process, pin or state behind, also after an
 * `up` that was killed half-way.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describePrivileged } from "../helpers/privileged.ts";
import { probe } from "../helpers/traffic.ts";

const name = `t${process.pid % 10000}`;
const root = join(import.meta.dir, "../..");
const script = join(root, "scripts/cluster.ts");
const stateDir = `/run/cilium-bun-cluster-${name}`;

function cluster(...args: string[]) {
  const r = Bun.spawnSync([process.execPath, script, ...args], { env: { ...process.env, CLUSTER_NAME: name }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Every pid the cluster recorded (etcd, operator, relay, agents). */
function recordedPids(): number[] {
  const state = JSON.parse(readFileSync(join(stateDir, "cluster.json"), "utf8"));
  return [...Object.values(state.services as Record<string, { pid: number }>), ...state.nodes.map((n: any) => n.agent).filter(Boolean)].map((d) => d.pid);
}

function leftovers(pids: number[]): string[] {
  const namespaces = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString().split("\n").filter((l) => l.startsWith(`${name}-`));
  // Any process whose command line names this cluster's paths or operator id (procps may be absent).
  const processes = readdirSync("/proc").filter((pid) => /^\d+$/.test(pid) && Number(pid) !== process.pid).filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      return argv.includes(`cilium-bun-cluster-${name}/`) || argv.includes(`${name}-operator`);
    } catch {
      return false;
    }
  });
  const alive = pids.filter((pid) => existsSync(`/proc/${pid}`));
  const paths = [stateDir, `/sys/fs/bpf/cilium-bun-cluster-${name}`].filter((p) => existsSync(p));
  return [...namespaces, ...processes.map((pid) => `process ${pid}`), ...alive.map((pid) => `pid ${pid} still running`), ...paths];
}

/** Polls `check` until it holds or `timeoutMs` passes; returns its last answer. */
async function eventually(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await Bun.sleep(100);
  }
  return true;
}

describePrivileged("scripts/cluster", () => {
  const scratch = mkdtempSync(join(tmpdir(), "cluster-script-"));
  afterAll(() => {
    cluster("down");
    rmSync(scratch, { recursive: true, force: true });
  });

  test("2 nodes: cross-node traffic, a cluster-wide policy, flows of both nodes through the relay, status, env, and a down that leaves nothing", async () => {
    const up = cluster("up", "--nodes", "2");
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/node1: 10\.99\.0\.11, pods 10\.200\.\d+\.0\/24 \(from the operator\)/);
    expect(up.stdout).toMatch(/node2: 10\.99\.0\.12, pods 10\.200\.\d+\.0\/24 \(from the operator\)/);
    expect(cluster("up").stderr).toContain("already up");

    // a and c on node 1, b on node 2: every pair below crosses the overlay.
    expect(cluster("pod", "add", "a", "--node", "1", "--namespace", "ns1", "--labels", "app=a").code).toBe(0);
    expect(cluster("pod", "add", "c", "--node", "1", "--namespace", "ns1", "--labels", "app=c").code).toBe(0);
    expect(cluster("pod", "add", "b", "--node", "2", "--namespace", "ns2", "--labels", "app=b").code).toBe(0);
    expect(cluster("pod", "add", "a", "--node", "2").stderr).toContain("pod a already exists");
    expect(cluster("pod", "add", "x", "--node", "7").stderr).toContain("--node 7: no such node");

    const status = cluster("status");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^etcd +healthy/m);
    expect(status.stdout).toContain(`leader ${name}-operator`);
    expect(status.stdout).toContain("2/2 nodes connected");
    expect(status.stdout).toMatch(/^node1 .*agent Ok, kvstore Ok/m);
    expect(status.stdout).toMatch(/^node2 .*agent Ok, kvstore Ok/m);
    const podLine = (pod: string) => status.stdout.split("\n").find((l) => l.trim().startsWith(`pod ${pod} `))!.trim().split(/\s+/);
    expect(podLine("b")[3]).toBe("node2");
    const [ipA, ipB, ipC] = ["a", "b", "c"].map((pod) => podLine(pod)[4]!);
    expect(ipB!.split(".").slice(0, 3)).not.toEqual(ipA!.split(".").slice(0, 3));

    const env = cluster("env").stdout;
    expect(env).toContain(`export CILIUM_SOCK=${stateDir}/n1/cilium.sock`);
    expect(env).toContain(`export CILIUM_SOCK_NODE2=${stateDir}/n2/cilium.sock`);
    expect(env).toContain(`export HUBBLE_SERVER=unix://${stateDir}/relay.sock`);
    const exported = Object.fromEntries([...env.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));

    // A TCP server in pod b (node 2), started detached: `down` must end it too.
    const server = cluster("exec", "--detach", "b", "--", process.execPath, join(root, "tests/helpers/echo-server.ts"), "tcp", "8080");
    expect(server.code).toBe(0);
    const serverPid = Number(/pid (\d+)/.exec(server.stdout)![1]);
    // Through the overlay without masquerading: the server sees the pod's own address.
    expect(await eventually(() => probe(`${name}-pod-a`, "tcp", ipB!, 8080) === ipA)).toBe(true);
    expect(probe(`${name}-pod-c`, "tcp", ipB!, 8080)).toBe(ipC!);
    expect(cluster("exec", "a", "--", "ping", "-c", "1", "-W", "1", ipB!).code).toBe(0);

    // Imported on node 1 only; b lives on node 2, which enforces it on ingress from the overlay.
    const policy = join(scratch, "b-from-a.yaml");
    writeFileSync(
      policy,
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: b-from-a, namespace: ns2}
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: a, "k8s:io.kubernetes.pod.namespace": ns1}}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`,
    );
    const imported = Bun.spawnSync([join(root, "dist/cilium"), "policy", "import", "-H", `unix://${exported.CILIUM_SOCK_NODE1}`, policy], { stderr: "pipe" });
    expect(imported.stderr.toString()).toBe("");
    expect(imported.exitCode).toBe(0);
    expect(await eventually(() => probe(`${name}-pod-c`, "tcp", ipB!, 8080) === null)).toBe(true);
    expect(probe(`${name}-pod-a`, "tcp", ipB!, 8080)).toBe(ipA!);
    expect(cluster("exec", "a", "--", "ping", "-c", "1", "-W", "1", ipB!).code).not.toBe(0);

    // The relay, through the real hubble binary and the address `env` printed.
    const observed = Bun.spawnSync([join(root, "dist/hubble"), "observe", "-o", "json", "--last", "1000"], {
      env: { ...process.env, HUBBLE_SERVER: exported.HUBBLE_SERVER! },
      stdout: "pipe",
      stderr: "pipe",
      timeout: 15_000,
    });
    expect(observed.stderr.toString()).toBe("");
    const flows = observed.stdout.toString().trim().split("\n").map((line) => JSON.parse(line).flow);
    expect(new Set(flows.map((f) => f.node_name))).toEqual(new Set(["node1", "node2"]));
    const denied = flows.filter((f) => f.verdict === "DROPPED" && f.IP?.source === ipC && f.IP?.destination === ipB);
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((f) => f.node_name === "node2")).toBe(true);
    // a -> b leaves node 1 through the overlay and is delivered on node 2.
    expect(flows.some((f) => f.node_name === "node1" && f.trace_observation_point === "TO_OVERLAY" && f.IP?.source === ipA && f.IP?.destination === ipB)).toBe(true);
    expect(flows.some((f) => f.verdict === "FORWARDED" && f.node_name === "node2" && f.IP?.source === ipA && f.IP?.destination === ipB)).toBe(true);

    expect(cluster("pod", "del", "c").code).toBe(0);
    expect(existsSync(`/var/run/netns/${name}-pod-c`)).toBe(false);

    const pids = [...recordedPids(), serverPid];
    expect(pids.every((pid) => existsSync(`/proc/${pid}`))).toBe(true);
    expect(cluster("down").code).toBe(0);
    expect(leftovers(pids)).toEqual([]);
    expect(cluster("status").stderr).toContain("no cluster is up");
  }, 150_000);

  test("down after an up that was killed half-way leaves nothing", async () => {
    const up = Bun.spawn([process.execPath, script, "up", "--nodes", "2"], { env: { ...process.env, CLUSTER_NAME: name }, stdout: "pipe", stderr: "pipe" });
    // Killed once etcd and the first agent are running, before the state file knows everything.
    expect(await eventually(() => existsSync(`/var/run/netns/${name}-node1`), 30_000)).toBe(true);
    up.kill("SIGKILL");
    await up.exited;
    const pids = existsSync(join(stateDir, "cluster.json")) ? recordedPids() : [];
    expect(pids.length).toBeGreaterThan(0);
    expect(cluster("up").stderr).toContain("already up");
    expect(cluster("down").code).toBe(0);
    expect(leftovers(pids)).toEqual([]);
  }, 60_000);
});
