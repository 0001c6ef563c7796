/**
 * The client side of the agent's monitor socket (src/agent/monitor/protocol.ts): which socket
 * (`--monitor-socket`, $CILIUM_MONITOR_SOCK, next to the API socket of `-H`/$CILIUM_SOCK, or
 * upstream's /var/run/cilium/monitor1_2.sock), and the frames as they arrive.
 */
import { dirname, join } from "node:path";
import { socketPathFromHost } from "../api/client.ts";
import { MONITOR_SOCKET_NAME } from "../config.ts";
import { FrameDecoder, type MonitorFrame } from "../monitor/protocol.ts";

export const DEFAULT_MONITOR_SOCKET = `/var/run/cilium/${MONITOR_SOCKET_NAME}`;

export function monitorSocketPath(options: { monitorSocket?: string; host?: string; env?: Record<string, string | undefined> }): string {
  const env = options.env ?? process.env;
  const explicit = options.monitorSocket || env.CILIUM_MONITOR_SOCK;
  if (explicit) {
    if (explicit.startsWith("unix://")) return explicit.slice("unix://".length);
    return explicit;
  }
  if (options.host || env.CILIUM_SOCK) return join(dirname(socketPathFromHost(options.host)), MONITOR_SOCKET_NAME);
  return DEFAULT_MONITOR_SOCKET;
}

export class MonitorUnreachableError extends Error {
  override name = "MonitorUnreachableError";
  constructor(
    readonly socketPath: string,
    readonly reason: string,
  ) {
    super(`cannot open the monitor socket ${socketPath}: ${reason}`);
  }
}

const HINTS: Record<string, string> = {
  ENOENT: "ENOENT (no such socket): is the agent running? (--monitor-socket selects another)",
  ECONNREFUSED: "ECONNREFUSED (nobody listening): is the agent running?",
  EACCES: "EACCES (permission denied): run as root or as a member of the socket's group",
};

export interface MonitorStream {
  /** Resolves when the agent closes the stream (or close() is called). */
  readonly closed: Promise<void>;
  close(): void;
}

/** Connects and calls `onFrames` with each batch of frames as it arrives. */
export async function openMonitorStream(socketPath: string, onFrames: (frames: MonitorFrame[]) => void): Promise<MonitorStream> {
  const decoder = new FrameDecoder();
  let resolveClosed!: () => void;
  let rejectClosed!: (error: unknown) => void;
  const closed = new Promise<void>((resolve, reject) => {
    resolveClosed = resolve;
    rejectClosed = reject;
  });
  let socket;
  try {
    socket = await Bun.connect({
      unix: socketPath,
      socket: {
        data(_socket, chunk) {
          try {
            onFrames(decoder.push(chunk));
          } catch (error) {
            _socket.end();
            rejectClosed(error);
          }
        },
        close() {
          resolveClosed();
        },
        error(_socket, error) {
          rejectClosed(error);
        },
      },
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new MonitorUnreachableError(socketPath, HINTS[code] ?? String(code));
  }
  return { closed, close: () => socket.end() };
}
