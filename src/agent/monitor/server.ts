/**
 * The monitor socket: every client gets the datapath's event stream (protocol.ts) from the
 * agent's MonitorHub. A slow client never slows the agent: each has a bounded queue, and what
 * does not fit is dropped for that client alone and reported to it as lost (LostWhere.client)
 * as soon as its queue has room again. Like the API socket: 0660, root and the socket group.
 */
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import { rmSync } from "node:fs";
import type { Logger } from "../../logging/index.ts";
import { bindSocket, prepareSocketPath } from "../api/socket.ts";
import type { MonitorEvents } from "./hub.ts";
import { LOST_FRAME_LEN, writeLostFrame, writeRecordFrame, FRAME_HEADER_LEN } from "./protocol.ts";

/** Default queue per client: ~20,000 records, a fifth of a second at the target rate. */
export const DEFAULT_CLIENT_QUEUE_BYTES = 4 << 20;

export interface MonitorServerOptions {
  socketPath: string;
  socketGid: number;
  monitor: MonitorEvents;
  log: Logger;
  clientQueueBytes?: number;
}

export interface MonitorServer {
  readonly socketPath: string;
  /** Clients connected now. */
  readonly clients: number;
  /** Disconnects every client and removes the socket. */
  stop(): void;
}

/** One client's queue: frames appended at `end`, written from `start`. */
class ClientQueue {
  private readonly buffer: Uint8Array;
  private start = 0;
  private end = 0;
  /** Records dropped since the last lost frame was queued. */
  private dropped = 0;
  private flushScheduled = false;
  private closed = false;
  readonly unsubscribe: () => void;

  constructor(
    private readonly socket: Socket<ClientQueue | undefined>,
    capacity: number,
    monitor: MonitorEvents,
  ) {
    this.buffer = new Uint8Array(capacity);
    this.unsubscribe = monitor.subscribe({
      onRecord: (record) => this.enqueueRecord(record),
      onLost: (count) => this.enqueueLost(count, "datapath"),
    });
  }

  private enqueueRecord(record: Uint8Array): void {
    const needed = FRAME_HEADER_LEN + record.length + (this.dropped > 0 ? LOST_FRAME_LEN : 0);
    if (!this.makeRoom(needed)) {
      this.dropped++;
      return;
    }
    this.reportDropped();
    this.end += writeRecordFrame(this.buffer, this.end, record);
    this.scheduleFlush();
  }

  private enqueueLost(count: number, where: "datapath" | "client"): void {
    if (!this.makeRoom(LOST_FRAME_LEN + (this.dropped > 0 ? LOST_FRAME_LEN : 0))) return;
    this.reportDropped();
    this.end += writeLostFrame(this.buffer, this.end, count, where);
    this.scheduleFlush();
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    this.end += writeLostFrame(this.buffer, this.end, this.dropped, "client");
    this.dropped = 0;
  }

  /** Whether `bytes` fit after the queued ones, moving them to the front if that makes room. */
  private makeRoom(bytes: number): boolean {
    if (this.closed) return false;
    if (this.end + bytes <= this.buffer.length) return true;
    if (this.end - this.start + bytes > this.buffer.length) return false;
    this.buffer.copyWithin(0, this.start, this.end);
    this.end -= this.start;
    this.start = 0;
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One write per burst of records (the hub delivers a whole ring drain synchronously).
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /**
   * Writes what the socket takes now; the rest waits for drain. Once the queue is empty, drops
   * since the last record are reported at once rather than with the next record.
   */
  flush(): void {
    while (!this.closed) {
      if (this.start === this.end) {
        if (this.dropped === 0 || !this.makeRoom(LOST_FRAME_LEN)) return;
        this.reportDropped();
      }
      const written = this.socket.write(this.buffer.subarray(this.start, this.end));
      if (written > 0) this.start += written;
      if (this.start !== this.end) return;
      this.start = this.end = 0;
    }
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
  }
}

export async function startMonitorServer(options: MonitorServerOptions): Promise<MonitorServer> {
  const { socketPath, monitor, log } = options;
  const capacity = options.clientQueueBytes ?? DEFAULT_CLIENT_QUEUE_BYTES;
  await prepareSocketPath(socketPath, { flag: "--monitor-socket-path", what: "the monitor socket" });
  const clients = new Set<ClientQueue>();
  const listener: UnixSocketListener<ClientQueue | undefined> | TCPSocketListener<ClientQueue | undefined> = bindSocket(socketPath, options.socketGid, () =>
    Bun.listen<ClientQueue | undefined>({
      unix: socketPath,
      socket: {
        open(socket) {
          const client = new ClientQueue(socket, capacity, monitor);
          socket.data = client;
          clients.add(client);
          log.debug(`monitor client connected (${clients.size} now)`);
        },
        drain(socket) {
          socket.data?.flush();
        },
        data() {
          // Clients have nothing to say; anything they send is ignored.
        },
        close(socket) {
          const client = socket.data;
          if (!client) return;
          client.close();
          clients.delete(client);
          log.debug(`monitor client disconnected (${clients.size} left)`);
        },
        error(_socket, error) {
          log.debug("monitor client connection failed", error);
        },
      },
    }),
  );
  log.info(`serving the monitor on ${socketPath}`);
  return {
    socketPath,
    get clients() {
      return clients.size;
    },
    stop() {
      for (const client of clients) client.close();
      clients.clear();
      listener.stop(true);
      rmSync(socketPath, { force: true });
    },
  };
}
