/** Real TCP and UDP traffic between test namespaces, through tests/helpers/{echo-server,probe}.ts. */
import type { Subprocess } from "bun";
import { join } from "node:path";

export type Protocol = "tcp" | "udp";

const helpers = import.meta.dir;

export interface EchoServer {
  stop(): void;
}

/** Starts an echo server in `netns` and waits until it listens. */
export async function startEchoServer(netns: string, protocol: Protocol, port: number): Promise<EchoServer> {
  const child: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(
    ["ip", "netns", "exec", netns, process.execPath, join(helpers, "echo-server.ts"), protocol, String(port)],
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
    throw new Error(`echo server (${protocol}/${port}) in ${netns} did not start: ${await new Response(child.stderr).text()}`);
  }
  return { stop: () => child.kill() };
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

export interface StreamResult {
  sent: number;
  received: number;
  closed: boolean;
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
