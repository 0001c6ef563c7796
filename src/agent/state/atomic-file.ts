/**
 * Files that are either wholly the old content or wholly the new, whenever the agent dies (even
 * kill -9, and for durable files even power loss): write a temporary file beside the target,
 * fsync it, rename it over the target, fsync the directory so the rename itself is durable.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

const TEMP_MARKER = ".tmp-";
let sequence = 0;

export interface AtomicWriteOptions {
  mode?: number;
  /**
   * Whether the file must survive power loss, not only a crash of the agent (default true): the
   * file and then its directory are fsynced. Without them the rename is still atomic for any
   * process (a restarted agent reads the old content or the new, never a mix: the page cache
   * outlives kill -9), at no journal commit. State that lives as long as the machine's pods
   * (IPAM, endpoints) needs no more: power loss ends those pods too, and the default state dir
   * /var/run/cilium is a tmpfs, where fsync does nothing and nothing survives a reboot.
   */
  durable?: boolean;
}

export function writeFileAtomic(path: string, content: string, options: AtomicWriteOptions = {}): void {
  const { mode = 0o600, durable = true } = options;
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${basename(path)}${TEMP_MARKER}${process.pid}-${++sequence}`);
  try {
    const fd = openSync(temp, "wx", mode);
    try {
      const bytes = Buffer.from(content);
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  if (durable) syncDirectory(dir);
}

/** Removes a file (one already gone is fine); durable as for writeFileAtomic (default true). */
export function removeFile(path: string, options: Pick<AtomicWriteOptions, "durable"> = {}): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (options.durable ?? true) syncDirectory(dirname(path));
}

/** Whether a directory entry is a temporary file of writeFileAtomic. */
function isTemporaryFile(name: string): boolean {
  return name.startsWith(".") && name.includes(TEMP_MARKER);
}

/**
 * Removes temporary files left by a writer that died before its rename. Their content was never
 * committed (nothing was handed out on its strength), so they are garbage.
 */
export function removeTemporaryFiles(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const name of names.filter(isTemporaryFile)) rmSync(join(dir, name), { force: true });
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
