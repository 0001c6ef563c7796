/**
 * The agent's daemon in this process with the recording fake datapath, serving its API on a unix
 * socket in a temporary directory: every route through the client the CNI plugin and CLI use,
 * malformed requests through raw fetch, the CLI commands as processes, a restart over the same
 * state, and the agent as its own process stopping on SIGTERM. Needs no root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentApiError, AgentClient, AgentUnreachableError } from "../../src/agent/api/client.ts";
import type { EndpointChangeRequest } from "../../src/agent/api/types.ts";
import { loadAgentConfig } from "../../src/agent/config-sources.ts";
import type { AgentConfig } from "../../src/agent/config.ts";
import { startDaemon, type Daemon } from "../../src/agent/daemon.ts";
import { RecordingDatapath, quietLogger } from "../helpers/agent-fake-datapath.ts";

const root = join(import.meta.dir, "../..");
let dir: string;
let config: AgentConfig;
let datapath: RecordingDatapath;
let daemon: Daemon | undefined;
let client: AgentClient;

async function start(): Promise<Daemon> {
  datapath = new RecordingDatapath();
  daemon = await startDaemon({ config, datapath, logger: quietLogger() });
  return daemon;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "agent-api-"));
  ({ config } = loadAgentConfig(
    {
      "node-name": "test-node",
      "ipv4-range": "10.210.0.0/29",
      "state-dir": join(dir, "state"),
      "bpf-root": join(dir, "bpf"),
      "socket-path": join(dir, "run", "cilium.sock"),
      mtu: "1420",
    },
    {},
  ));
  await start();
  client = new AgentClient(config.socketPath, { timeoutMs: 5000 });
});

afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function attachment(containerId: string, ip: string, extra: Partial<EndpointChangeRequest> = {}): EndpointChangeRequest {
  return {
    "container-id": containerId,
    "container-interface-name": "eth0",
    "interface-name": `lxc${containerId}`,
    "interface-index": 42,
    mac: "0a:58:0a:d2:00:02",
    "host-mac": "0a:58:0a:d2:00:01",
    addressing: { ipv4: ip },
    "netns-path": `/var/run/netns/${containerId}`,
    "k8s-namespace": "default",
    "k8s-pod-name": `pod-${containerId}`,
    ...extra,
  };
}

async function apiFailure(request: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await request;
  } catch (error) {
    if (error instanceof AgentApiError) {
      expect(error.body?.code).toBe(error.status);
      return { status: error.status, message: error.message };
    }
    throw error;
  }
  throw new Error("the request succeeded");
}

/** A request as raw HTTP over the socket, for what the client would never send. */
async function raw(method: string, path: string, requestBody?: string) {
  const response = await fetch(`http://localhost${path}`, { method, body: requestBody, unix: config.socketPath } as RequestInit);
  const body: any = await response.json();
  return { status: response.status, body, allow: response.headers.get("allow") };
}

/** A CLI command as a process; asynchronous, since the agent answers from this event loop. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const child = Bun.spawn([process.execPath, join(root, "src/main.ts"), ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe("the API socket", () => {
  test("is a socket with mode 0660, owned by the configured group, in a 0750 directory", () => {
    const socket = statSync(config.socketPath);
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o660);
    expect(socket.gid).toBe(config.socketGid);
    expect(statSync(join(dir, "run")).mode & 0o777).toBe(0o750);
  });

  test("a dead socket is a clear client error", async () => {
    const dead = new AgentClient(join(dir, "nothing.sock"));
    const error = await dead.healthz().catch((e) => e);
    expect(error).toBeInstanceOf(AgentUnreachableError);
    expect(error.reason).toBe("ENOENT");
    expect(error.message).toBe(`cannot reach the cilium agent at ${join(dir, "nothing.sock")}: ENOENT`);
  });
});

describe("daemon routes", () => {
  test("GET /v1/healthz reports Ok, the node, IPAM and the datapath", async () => {
    const status = await client.healthz();
    expect(status.cilium.state).toBe("Ok");
    expect(status.kvstore).toEqual({ state: "Disabled", msg: "" });
    expect(status["node-name"]).toBe("test-node");
    expect(status.ipam.status).toBe("IPv4: 1/6 allocated from 10.210.0.0/29");
    expect(status.ipam.allocations).toEqual({ "10.210.0.1": "router" });
    expect(status.datapath).toMatchObject({ state: "Ok", details: { "attach-mode": "tcx" } });
    expect(status.problems).toEqual([]);
  });

  test("GET /v1/config is the effective configuration", async () => {
    expect(await client.config()).toMatchObject({ "node-name": "test-node", "ipv4-range": "10.210.0.0/29", mtu: 1420, "socket-path": config.socketPath });
  });
});

describe("IPAM routes", () => {
  test("POST allocates for an owner (201) and answers the same address again", async () => {
    const answer = await client.allocateIp("ipam-a:eth0");
    expect(answer).toEqual({
      address: { ipv4: "10.210.0.2" },
      // --mtu 1420 is the underlay's; tunnel mode (the default) leaves pods 50 bytes less.
      ipv4: { ip: "10.210.0.2", cidrs: ["10.210.0.0/29"], gateway: "10.210.0.1", mtu: 1370 },
      "host-addressing": { ipv4: { ip: "10.210.0.1", enabled: true } },
    });
    expect((await client.allocateIp("ipam-a:eth0")).ipv4.ip).toBe("10.210.0.2");
    expect((await raw("POST", "/v1/ipam?owner=ipam-a:eth0")).status).toBe(201);
  });

  test("DELETE releases by address and by owner; bad releases are distinct errors", async () => {
    await client.releaseIp("10.210.0.2");
    expect(await apiFailure(client.releaseIp("10.210.0.2"))).toEqual({ status: 404, message: "10.210.0.2 is not allocated in IPAM pool 10.210.0.0/29" });
    expect(await apiFailure(client.releaseIp("10.99.0.2"))).toEqual({ status: 400, message: "10.99.0.2 is not in IPAM pool 10.210.0.0/29" });
    expect(await apiFailure(client.releaseIp("10.210.0"))).toEqual({ status: 400, message: '"10.210.0" is not an IPv4 address' });
    expect((await apiFailure(client.releaseIp("10.210.0.1"))).status).toBe(400);
    await client.allocateIp("ipam-b:eth0");
    await client.releaseIpOf("ipam-b:eth0");
    expect(await apiFailure(client.releaseIpOf("ipam-b:eth0"))).toEqual({ status: 404, message: 'owner "ipam-b:eth0" holds no address' });
  });

  test("bad requests name the parameter", async () => {
    expect(await raw("POST", "/v1/ipam")).toMatchObject({ status: 400, body: { code: 400, message: "owner: is required (e.g. ?owner=<container id>:<ifname>)" } });
    expect((await raw("POST", "/v1/ipam?family=ipv6&owner=x")).body.message).toBe('family: "ipv6" is not supported; this agent allocates ipv4 only');
  });

  test("an exhausted pool is 507 and names the pool", async () => {
    const owners = ["x1", "x2", "x3", "x4", "x5"].map((c) => `${c}:eth0`);
    for (const owner of owners) await client.allocateIp(owner);
    const failure = await apiFailure(client.allocateIp("x6:eth0"));
    expect(failure).toEqual({ status: 507, message: 'IPAM pool 10.210.0.0/29 is exhausted: all 5 pod addresses are allocated, none left for "x6:eth0"' });
    for (const owner of owners) await client.releaseIpOf(owner);
  });
});

describe("endpoint routes", () => {
  let ip: string;

  test("PUT cni-attachment-id creates the endpoint (201) once the datapath applied it", async () => {
    ip = (await client.allocateIp("web1:eth0")).ipv4.ip;
    const endpoint = await client.putEndpoint("cni-attachment-id:web1:eth0", attachment("web1", ip, { labels: ["k8s:app=web"] }));
    expect(endpoint).toMatchObject({ id: 1, state: "ready", addressing: { ipv4: ip }, labels: ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=default"] });
    expect(datapath.programmed.has(1)).toBe(true);
  });

  test("GET finds it by every form; the list has it", async () => {
    for (const id of [1, "container-id:web1", "cni-attachment-id:web1:eth0", "pod-name:default/pod-web1", `ipv4:${ip}`]) {
      expect((await client.endpoint(id)).id).toBe(1);
    }
    expect((await client.endpoints()).map((e) => e.id)).toEqual([1]);
    expect(await apiFailure(client.endpoint(9))).toEqual({ status: 404, message: "endpoint 9 not found" });
    expect((await apiFailure(client.endpoint("bogus:1"))).status).toBe(400);
  });

  test("conflicts are 409: the attachment again, a taken id, releasing an endpoint's address", async () => {
    expect(await apiFailure(client.putEndpoint("cni-attachment-id:web1:eth0", attachment("web1", ip)))).toEqual({
      status: 409,
      message: "endpoint 1 already exists for cni-attachment-id:web1:eth0",
    });
    const other = (await client.allocateIp("web2:eth0")).ipv4.ip;
    expect(await apiFailure(client.putEndpoint(1, attachment("web2", other)))).toEqual({ status: 409, message: "endpoint ID 1 is already in use" });
    expect(await apiFailure(client.releaseIp(ip))).toEqual({ status: 409, message: `${ip} is in use by endpoint 1; delete the endpoint to release it` });
    await client.releaseIp(other);
  });

  test("a pod cannot claim another pod's address (400)", async () => {
    const failure = await apiFailure(client.putEndpoint("cni-attachment-id:thief:eth0", attachment("thief", ip)));
    expect(failure.status).toBe(400);
    expect(failure.message).toStartWith(`addressing.ipv4: ${ip} is allocated to "web1:eth0", not to this attachment "thief:eth0"`);
  });

  test("a datapath failure is 500 and leaves nothing behind", async () => {
    const other = (await client.allocateIp("broken:eth0")).ipv4.ip;
    datapath.failures.set("applyEndpoint", "tcx attach: no such device");
    const failure = await apiFailure(client.putEndpoint("cni-attachment-id:broken:eth0", attachment("broken", other)));
    datapath.failures.clear();
    expect(failure).toEqual({ status: 500, message: "endpoint 2 (cni-attachment-id:broken:eth0): the datapath could not apply it: tcx attach: no such device" });
    expect((await client.endpoints()).map((e) => e.id)).toEqual([1]);
    await client.releaseIp(other);
  });

  test("malformed bodies are 400 naming the field; wrong methods 405; unknown paths 404", async () => {
    expect(await raw("PUT", "/v1/endpoint/cni-attachment-id%3Ax%3Aeth0", "")).toMatchObject({
      status: 400,
      body: { code: 400, message: "the request body is empty: expected a JSON endpoint change request" },
    });
    expect((await raw("PUT", "/v1/endpoint/0", "{nope")).body.message).toStartWith("the request body is not valid JSON");
    const { "interface-index": _, ...missing } = attachment("x", "10.210.0.5");
    expect((await raw("PUT", "/v1/endpoint/0", JSON.stringify({ ...missing, mac: "zz" }))).body).toEqual({
      code: 400,
      message: "invalid endpoint change request: interface-index: is required; mac: must be a MAC address such as 0a:58:0a:c8:00:05",
    });
    expect(await raw("PATCH", "/v1/endpoint/1")).toMatchObject({ status: 405, allow: "GET, PUT, DELETE", body: { code: 405 } });
    expect(await raw("GET", "/v2/nothing")).toEqual({ status: 404, body: { code: 404, message: "no such API path: /v2/nothing" }, allow: null });
  });

  test("the CLI prints status and endpoints as upstream does", async () => {
    const host = `unix://${config.socketPath}`;
    const status = await cli(["status", "-H", host]);
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^KVStore:\s+Disabled/m);
    expect(status.stdout).toMatch(/^Cilium:\s+Ok   \d+\.\d+\.\d+/m);
    expect(status.stdout).toMatch(/^NodeName:\s+test-node$/m);
    expect(status.stdout).toMatch(/^IPAM:\s+IPv4: 2\/6 allocated from 10\.210\.0\.0\/29$/m);
    expect(status.stdout).toMatch(/^Endpoints:\s+1 \(1 ready\)$/m);

    const verbose = await cli(["status", "--verbose", "-H", config.socketPath]);
    expect(verbose.stdout).toMatch(/^Attach mode:\s+tcx$/m);
    expect(verbose.stdout).toContain(`  ${ip} (web1:eth0)\n`);
    expect(verbose.stdout).toMatch(/^ {2}ready:\s+1$/m);
    expect(verbose.stdout).toMatch(/^Health:\s+Ok$/m);
    expect(JSON.parse((await cli(["status", "-o", "json"], { CILIUM_SOCK: config.socketPath })).stdout).cilium.state).toBe("Ok");

    const list = await cli(["endpoint", "list", "-H", host]);
    expect(list.code).toBe(0);
    const rows = list.stdout.split("\n").map((line) => line.trimEnd());
    expect(rows[0]).toMatch(/^ENDPOINT\s+POLICY \(ingress\)\s+POLICY \(egress\)\s+IDENTITY\s+LABELS \(source:key\[=value\]\)\s+IPv6\s+IPv4\s+STATUS$/);
    expect(rows[1]).toMatch(/^\s+ENFORCEMENT\s+ENFORCEMENT$/);
    expect(rows[2]).toMatch(new RegExp(`^1\\s+Disabled\\s+Disabled\\s+256\\s+k8s:app=web\\s+${ip.replaceAll(".", "\\.")}\\s+ready$`));
    expect(rows[3]).toMatch(/^\s+k8s:io\.kubernetes\.pod\.namespace=default$/);
    expect(JSON.parse((await cli(["endpoint", "list", "-o", "json", "-H", host])).stdout)[0].id).toBe(1);

    const get = await cli(["endpoint", "get", "cni-attachment-id:web1:eth0", "-H", host]);
    expect(JSON.parse(get.stdout)).toMatchObject([{ id: 1, "container-id": "web1" }]);
    const missing = await cli(["endpoint", "get", "77", "-H", host]);
    expect([missing.code, missing.stderr]).toEqual([1, "cannot get endpoint 77: endpoint 77 not found (HTTP 404)\n"]);
  }, 30_000);

  test("the CLI against a dead socket: one clear line and a non-zero exit", async () => {
    const deadSocket = join(dir, "dead.sock");
    for (const args of [["status"], ["endpoint", "list"]]) {
      const run = await cli([...args, "-H", `unix://${deadSocket}`]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe("");
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(run.stderr).toContain(`cannot reach the cilium agent at ${deadSocket}: ENOENT (no such socket): is the agent running?`);
    }
  }, 30_000);

  test("DELETE removes the endpoint and releases its address; by attachment it also cleans up without one", async () => {
    await client.deleteEndpoint("cni-attachment-id:web1:eth0");
    expect(datapath.programmed.size).toBe(0);
    expect((await client.healthz()).ipam.allocations[ip]).toBeUndefined();
    expect(await apiFailure(client.deleteEndpoint(1))).toEqual({ status: 404, message: "endpoint 1 not found" });
    // An ADD that crashed after IPAM: the address is released by the attachment's DEL.
    const orphan = (await client.allocateIp("crashed:eth0")).ipv4.ip;
    await client.deleteEndpoint("cni-attachment-id:crashed:eth0");
    expect((await client.healthz()).ipam.allocations[orphan]).toBeUndefined();
    expect((await apiFailure(client.deleteEndpoint("cni-attachment-id:crashed:eth0"))).status).toBe(404);
  });

  test("every request's latency was recorded under its route's template", () => {
    const series = daemon!.apiLatency.snapshot();
    const keys = new Set(series.map((s) => `${s.method} ${s.path} ${s.status}`));
    for (const key of ["GET /v1/healthz 200", "PUT /v1/endpoint/{id} 201", "PUT /v1/endpoint/{id} 409", "POST /v1/ipam 507", "DELETE /v1/ipam/{ip} 404", "GET unmatched 404"]) {
      expect(keys).toContain(key);
    }
  });
});

describe("restart", () => {
  test("a new daemon over the same state keeps addresses and endpoints, re-applying them", async () => {
    const ip = (await client.allocateIp("keep:eth0")).ipv4.ip;
    await client.putEndpoint("cni-attachment-id:keep:eth0", attachment("keep", ip));
    const kept = (await client.allocateIp("no-endpoint-yet:eth0")).ipv4.ip;
    await daemon!.stop();
    expect(existsSync(config.socketPath)).toBe(false);
    expect(datapath.calls.at(-1)).toBe("stop");

    await start();
    expect(datapath.calls.slice(0, 3)).toEqual(["start test-node", expect.stringMatching(/^applyEndpoint \d+$/), expect.stringMatching(/^removeStaleEndpoints /)]);
    const endpoint = await client.endpoint("cni-attachment-id:keep:eth0");
    expect(endpoint).toMatchObject({ state: "ready", addressing: { ipv4: ip } });
    const status = await client.healthz();
    expect(status.ipam.allocations).toMatchObject({ [ip]: "keep:eth0", [kept]: "no-endpoint-yet:eth0" });
    expect((await client.allocateIp("no-endpoint-yet:eth0")).ipv4.ip).toBe(kept);
  });

  test("a stale socket from a killed agent is replaced; a live one is refused", async () => {
    await daemon!.stop();
    // A process that binds the socket and is killed leaves the file behind.
    const holder = Bun.spawn([process.execPath, "-e", `Bun.serve({ unix: ${JSON.stringify(config.socketPath)}, fetch: () => new Response("") }); console.log("up")`], {
      stdout: "pipe",
    });
    const reader = holder.stdout.getReader();
    await reader.read();
    await expect(start()).rejects.toThrow(`another process is serving on ${config.socketPath}`);
    holder.kill("SIGKILL");
    await holder.exited;
    expect(existsSync(config.socketPath)).toBe(true);
    await start();
    expect((await client.healthz()).cilium.state).toBe("Ok");
  }, 30_000);
});

describe("the agent as a process", () => {
  test("bad configuration: every problem on stderr, exit 2", async () => {
    const child = Bun.spawn([process.execPath, join(root, "tests/helpers/agent-process.ts"), "--ipv4-range=10.0.0.0/33", "--mtu=1"], { stderr: "pipe", stdout: "pipe" });
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect(code).toBe(2);
    expect(stderr).toBe('invalid configuration: --ipv4-range "10.0.0.0/33": prefix length must be 0-32\ninvalid configuration: --mtu "1": must be an integer from 68 to 65535\n');
  });

  test("SIGTERM: stops serving, removes the socket, stops the datapath, exits 0", async () => {
    const own = join(dir, "process");
    const socketPath = join(own, "cilium.sock");
    const journal = join(dir, "process-journal");
    const child = Bun.spawn(
      [process.execPath, join(root, "tests/helpers/agent-process.ts"), "--ipv4-range=10.211.0.0/24", `--state-dir=${own}`, `--socket-path=${socketPath}`, "--node-name=proc"],
      { env: { ...process.env, FAKE_DATAPATH_JOURNAL: journal }, stdout: "pipe", stderr: "pipe" },
    );
    try {
      const processClient = new AgentClient(socketPath, { timeoutMs: 2000 });
      const deadline = Date.now() + 10_000;
      while (!(await processClient.healthz().then(() => true, () => false))) {
        if (Date.now() > deadline) throw new Error(`the agent did not come up: ${await new Response(child.stderr).text()}`);
        await Bun.sleep(50);
      }
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      expect(existsSync(socketPath)).toBe(false);
      expect(readFileSync(journal, "utf8").trim().split("\n")).toEqual(["start proc", "removeStaleEndpoints ", "stop"]);
    } finally {
      child.kill("SIGKILL");
    }
  }, 30_000);
});
