/**
 * The API's unix socket on disk: its directory (0750), a stale socket left by a dead agent
 * (removed), a live one (refused: two agents must not share a socket), and its ownership and
 * mode once bound (0660, root and the configured group).
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname } from "node:path";

const PROBE_TIMEOUT_MS = 1000;
export const SOCKET_MODE = 0o660;
const SOCKET_DIR_MODE = 0o750;

/** Makes `path` free to bind: creates its directory, removes a stale socket. `option` names the path's flag in errors. */
export async function prepareSocketPath(path: string, option = "--socket-path"): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: SOCKET_DIR_MODE });
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket: refusing to replace it with a socket (${option})`);
  if (await answers(path)) throw new Error(`another process is serving on ${path}: is another agent running with the same ${option}?`);
  rmSync(path, { force: true });
}

/**
 * Binds with a umask that leaves the socket no wider than 0660 from its first moment, then sets
 * its mode and group explicitly. The umask is process-wide, but binding is synchronous: nothing
 * else runs in between.
 */
export function bindSocket<T>(path: string, gid: number, bind: () => T): T {
  const previous = process.umask(0o777 & ~SOCKET_MODE);
  let bound: T;
  try {
    bound = bind();
  } finally {
    process.umask(previous);
  }
  chownSync(path, process.getuid?.() ?? 0, gid);
  chmodSync(path, SOCKET_MODE);
  return bound;
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    const done = (live: boolean) => {
      socket.destroy();
      resolve(live);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
