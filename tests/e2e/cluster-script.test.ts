/**
 * scripts/cluster, as the demo and users drive it: up, pods, exec, env, status, down — and down
 * leaves no namespace, process, pin or state behind.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describePrivileged } from "../helpers/privileged.ts";

const name = `t${process.pid % 10000}`;
const script = join(import.meta.dir, "../../scripts/cluster.ts");

function cluster(...args: string[]) {
  const r = Bun.spawnSync([process.execPath, script, ...args], { env: { ...process.env, CLUSTER_NAME: name }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function leftovers(): string[] {
  const namespaces = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString().split("\n").filter((l) => l.startsWith(`${name}-`));
  const agents = Bun.spawnSync(["pgrep", "-f", `cilium-bun-cluster-${name}/`]).stdout.toString().trim().split("\n").filter(Boolean);
  const paths = [`/run/cilium-bun-cluster-${name}`, `/sys/fs/bpf/cilium-bun-cluster-${name}`].filter((p) => existsSync(p));
  return [...namespaces, ...agents.map((pid) => `agent pid ${pid}`), ...paths];
}

describePrivileged("scripts/cluster", () => {
  afterAll(() => {
    cluster("down");
  });

  test("up, pods, exec, env, status and a down that leaves nothing", () => {
    expect(cluster("up", "--nodes", "1").code).toBe(0);
    expect(cluster("up").stderr).toContain("already up");
    expect(cluster("pod", "add", "a", "--namespace", "ns1", "--labels", "app=a").code).toBe(0);
    expect(cluster("pod", "add", "b", "--namespace", "ns2", "--labels", "app=b").code).toBe(0);
    expect(cluster("pod", "add", "a").stderr).toContain("pod a already exists");
    expect(cluster("pod", "add", "c", "--node", "7").stderr).toContain("--node 7: no such node");
    const status = cluster("status").stdout;
    expect(status).toContain("agent healthy");
    const ipOfB = status.split("\n").find((l) => l.includes("pod b"))!.trim().split(/\s+/)[4]!;
    expect(cluster("exec", "a", "--", "ping", "-c", "1", "-W", "1", ipOfB).code).toBe(0);
    expect(cluster("env").stdout).toContain(`CILIUM_SOCK=/run/cilium-bun-cluster-${name}/n1/cilium.sock`);
    expect(cluster("pod", "del", "b").code).toBe(0);
    expect(cluster("exec", "a", "--", "ping", "-c", "1", "-W", "1", ipOfB).code).not.toBe(0);
    expect(cluster("down").code).toBe(0);
    expect(leftovers()).toEqual([]);
  }, 60_000);
});
