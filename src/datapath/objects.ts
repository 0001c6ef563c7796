/**
 * The BPF objects compiled from bpf/*.c, embedded in the executable. Each program is loaded once
 * per node and shared by every endpoint; nothing is compiled on the node.
 */
import { readFileSync } from "node:fs";
import bpfHost from "../../build/bpf/bpf_host.o" with { type: "file" };
import bpfLxc from "../../build/bpf/bpf_lxc.o" with { type: "file" };
import bpfOverlay from "../../build/bpf/bpf_overlay.o" with { type: "file" };

const objects = { bpf_lxc: bpfLxc, bpf_host: bpfHost, bpf_overlay: bpfOverlay } as const;

export type DatapathObjectName = keyof typeof objects;

/** Synchronous so a datapath can be started inside a network namespace (Netns.run is sync). */
export function readObject(name: DatapathObjectName): Uint8Array {
  return readFileSync(objects[name]);
}
