/**
 * The plugin's own netlink, for when the agent cannot be reached: DEL, and the undo of an ADD the
 * agent died in the middle of, still remove the attachment's host veth (its name derives from
 * the attachment), which takes the pod end with it. Imported lazily: FFI costs start-up time.
 */
import { deleteLinkIfPresent } from "./veth.ts";
import { openHostNetlink } from "./sandbox.ts";

/** Deletes the host veth if present; answers what went wrong, if anything. */
export function deleteHostVeth(name: string): string | undefined {
  try {
    const host = openHostNetlink(`delete veth ${name}`);
    try {
      deleteLinkIfPresent(host, name);
    } finally {
      host.close();
    }
    return undefined;
  } catch (error) {
    return `delete veth ${name}: ${(error as Error).message}`;
  }
}
