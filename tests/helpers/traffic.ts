/** Real TCP and UDP traffic between test namespaces, through tests/helpers/{echo-server,probe}.ts. */
import type { Subprocess } from "bun";
import { join } from "node:path";

export type Protocol = "tcp" | "udp";

const helpers = import.meta.dir;

export interface EchoServer {
  stop(): void;
  /** Whether the server process is still running. */
  alive(): boolean;
  /** What the server wrote to stderr so far (when it died: why). */
  stderr(): Promise<string>;
}

/** Starts an echo server in `netns` and waits until it listens. */
export async function startEchoServer(netns: string, protocol: Protocol, port: number): Promise<EchoServer> {
  return startEchoServers(netns, [{ protocol, port }]);
}

/** One echo server process in `netns` listening on several ports; waits until it listens on all. */
export async function startEchoServers(netns: string, listeners: readonly { protocol: Protocol; port: number }[]): Promise<EchoServer> {
  const what = listeners.map((l) => `${l.protocol}/${l.port}`).join(", ");
  const child: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(
    ["ip", "netns", "exec", netns, process.execPath, join(helpers, "echo-server.ts"), ...listeners.flatMap((l) => [l.protocol, String(l.port)])],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const reader = child.stdout.getReader();
  const { value } = await Promise.race([
    reader.read(),
    Bun.sleep(5000).then(() => ({ value: undefined })),
  ]);
  reader.releaseLock();
  if (!value || !new TextDecoder().decode(value).includes("ready")) {
    child.kill();
    throw new Error(`echo server (${what}) in ${netns} did not start: ${await new Response(child.stderr).text()}`);
  }
  return { stop: () => child.kill(), alive: () => child.exitCode === null && child.signalCode === null, stderr: () => new Response(child.stderr).text() };
}

/**
 * One request from `netns` to ip:port. Returns the source address the server saw, or null when
 * no answer came within the timeout.
 */
export function probe(netns: string, protocol: Protocol, ip: string, port: number, timeoutMs = 1000): string | null {
  const result = Bun.spawnSync(
    ["ip", "netns", "exec", netns, process.execPath, join(helpers, "probe.ts"), protocol, ip, String(port), String(timeoutMs)],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs + 5000 },
  );
  return result.exitCode === 0 ? result.stdout.toString().trim() : null;
}

/** probe() without blocking: many can run at once. */
export async function probeAsync(netns: string, protocol: Protocol, ip: string, port: number, timeoutMs = 1000): Promise<string | null> {
  const child = Bun.spawn(["ip", "netns", "exec", netns, process.execPath, join(helpers, "probe.ts"), protocol, ip, String(port), String(timeoutMs)], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "ignore",
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 5000);
  const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  clearTimeout(killer);
  return code === 0 ? out.trim() : null;
}

export interface StreamResult {
  sent: number;
  received: number;
  closed: boolean;
  /** Epoch milliseconds of the last answer (0: none). */
  lastReceivedAt?: number;
}

/** One long-lived TCP connection from `netns`, sending every intervalMs until stopped. */
export function startStream(netns: string, ip: string, port: number, intervalMs = 20): { stop(): Promise<StreamResult> } {
  const child = Bun.spawn(
    ["ip", "netns", "exec", netns, process.execPath, join(helpers, "stream-client.ts"), ip, String(port), String(intervalMs)],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  return {
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
      const out = (await new Response(child.stdout).text()).trim();
      if (!out) throw new Error(`stream client printed nothing: ${await new Response(child.stderr).text()}`);
      return JSON.parse(out.split("\n").pop()!) as StreamResult;
    },
  };
}
