/**
 * The agent's monitor socket over a real unix socket, fed by MonitorHub from the recording
 * datapath: every client sees every record; a client that stops reading loses records to its own
 * bounded queue (reported to it as lost, exactly counted) while the others lose nothing; the
 * datapath's own losses reach every client.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MonitorHub } from "../../src/agent/monitor/hub.ts";
import { FrameDecoder, type MonitorFrame } from "../../src/agent/monitor/protocol.ts";
import { startMonitorServer, type MonitorServer } from "../../src/agent/monitor/server.ts";
import { quietLogger, RecordingDatapath } from "../helpers/agent-fake-datapath.ts";

const RECORD = new Uint8Array(176).map((_, i) => i);

class Client {
  readonly frames: MonitorFrame[] = [];
  private readonly decoder = new FrameDecoder();
  readonly socket: Socket;
  readonly connected: Promise<void>;

  constructor(path: string) {
    this.socket = createConnection({ path });
    this.connected = new Promise((resolve) => this.socket.once("connect", () => resolve()));
    this.socket.on("data", (chunk: Buffer) => this.frames.push(...this.decoder.push(chunk)));
  }

  records(): number {
    return this.frames.filter((f) => f.kind === "record").length;
  }

  lost(where: "client" | "datapath"): number {
    return this.frames.reduce((sum, f) => sum + (f.kind === "lost" && f.where === where ? f.count : 0), 0);
  }
}

const dir = mkdtempSync(join(tmpdir(), "monitor-server-"));
const socketPath = join(dir, "monitor1_2.sock");
const datapath = new RecordingDatapath();
let hub: MonitorHub;
let server: MonitorServer;

beforeAll(async () => {
  hub = new MonitorHub({ datapath, log: quietLogger()("monitor"), lostPollMs: 50 });
  // Room for 600 records per client (a burst of 500 fits) besides the kernel's socket buffer.
  server = await startMonitorServer({ socketPath, socketGid: process.getgid!(), monitor: hub, log: quietLogger()("monitor"), clientQueueBytes: 600 * 181 });
});

afterAll(() => {
  server.stop();
  hub.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await Bun.sleep(10);
}

test("the socket is 0660 and refuses to be taken over by a second server", async () => {
  expect(statSync(socketPath).mode & 0o777).toBe(0o660);
  await expect(startMonitorServer({ socketPath, socketGid: process.getgid!(), monitor: hub, log: quietLogger()("monitor") })).rejects.toThrow(
    `another process is serving on ${socketPath}: is another agent running with the same --monitor-socket-path?`,
  );
});

test("a slow client loses records to its own queue, counted exactly; a reading client loses none", async () => {
  const fast = new Client(socketPath);
  const slow = new Client(socketPath);
  await Promise.all([fast.connected, slow.connected]);
  await until(() => server.clients === 2);
  slow.socket.pause();

  const total = 20_000; // ~3.6 MB: far more than the slow client's socket buffer and queue
  for (let sent = 0; sent < total; sent += 500) {
    for (let i = 0; i < 500; i++) datapath.emitEvent(RECORD);
    await Bun.sleep(1);
  }
  await until(() => fast.records() === total);
  expect(fast.records()).toBe(total);
  expect(fast.lost("client")).toBe(0);
  expect((fast.frames.find((f) => f.kind === "record") as { record: Uint8Array }).record).toEqual(RECORD);

  slow.socket.resume();
  // The drop count is reported once the queue has room again, even with no new record.
  await until(() => slow.records() + slow.lost("client") === total);
  expect(slow.lost("client")).toBeGreaterThan(0);
  expect(slow.records() + slow.lost("client")).toBe(total);

  // The datapath's losses reach every client.
  datapath.eventsLost += 7;
  await until(() => fast.lost("datapath") === 7 && slow.lost("datapath") === 7);
  expect([fast.lost("datapath"), slow.lost("datapath")]).toEqual([7, 7]);

  fast.socket.destroy();
  slow.socket.destroy();
  await until(() => server.clients === 0);
  expect(server.clients).toBe(0);
}, 30_000);
