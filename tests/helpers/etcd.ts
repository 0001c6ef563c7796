/**
 * A real etcd (Debian's /usr/bin/etcd) for tests: a temporary data dir, a free port on a given
 * address (127.0.0.1, or an address inside a network namespace when `netns` is given: the server
 * then runs there through nsenter --net). stop() kills it and removes the data dir; start()
 * after stop() brings it back on the same address and data (an outage and recovery).
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ETCD_BINARY = "/usr/bin/etcd";

export interface EtcdServerOptions {
  host?: string;
  /** Network namespace name (under /var/run/netns) to run in. */
  netns?: string;
  port?: number;
}

/** A port free on 127.0.0.1 now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export class EtcdServer {
  readonly dataDir = mkdtempSync(join(tmpdir(), "test-etcd-"));
  private process: Subprocess | undefined;
  private logText = "";

  private constructor(
    readonly host: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly netns: string | undefined,
  ) {}

  static async start(options: EtcdServerOptions = {}): Promise<EtcdServer> {
    const server = new EtcdServer(options.host ?? "127.0.0.1", options.port ?? (await freePort()), await freePort(), options.netns);
    try {
      await server.start();
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  get url(): string {
    return `http://${this.host}:${this.clientPort}`;
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null;
  }

  async start(): Promise<void> {
    const argv = [
      ETCD_BINARY,
      "--name",
      "test",
      "--data-dir",
      this.dataDir,
      "--listen-client-urls",
      this.url,
      "--advertise-client-urls",
      this.url,
      "--listen-peer-urls",
      `http://${this.host}:${this.peerPort}`,
      "--initial-advertise-peer-urls",
      `http://${this.host}:${this.peerPort}`,
      "--initial-cluster",
      `test=http://${this.host}:${this.peerPort}`,
      "--log-level",
      "error",
      "--logger",
      "zap",
    ];
    const proc = Bun.spawn(this.netns ? ["nsenter", `--net=/var/run/netns/${this.netns}`, ...argv] : argv, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === "x64" ? "" : process.arch },
    });
    this.process = proc;
    void new Response(proc.stderr).text().then((t) => (this.logText += t));
    const deadline = Date.now() + 15_000;
    while (!(await this.healthy())) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`etcd did not come up on ${this.url}: ${this.logText}`);
      await Bun.sleep(100);
    }
  }

  /** Whether etcd answers /health, asked from where it runs. */
  async healthy(): Promise<boolean> {
    const curl = ["curl", "-s", "-m", "1", `${this.url}/health`];
    const result = Bun.spawnSync(this.netns ? ["nsenter", `--net=/var/run/netns/${this.netns}`, ...curl] : curl, { stdout: "pipe", stderr: "ignore" });
    return result.stdout.toString().includes('"health":"true"');
  }

  /** Kills the server (an outage); the data dir stays for start(). */
  async stop(): Promise<void> {
    const proc = this.process;
    if (!proc) return;
    proc.kill("SIGKILL");
    await proc.exited;
    this.process = undefined;
  }

  /** Stops the server and removes its data. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  get log(): string {
    return this.logText;
  }
}
