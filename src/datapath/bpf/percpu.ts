/**
 * Values of per-CPU maps, sized for this machine: one per *possible* CPU (see PerCpuCodec).
 */
import { PerCpuCodec, type Codec } from "./codec.ts";
import { check } from "./error.ts";
import { libbpf } from "./libbpf.ts";

let cachedPossibleCpus: number | null = null;

/** How many CPUs the kernel may ever bring up: the length of every per-CPU value. */
export function possibleCpus(): number {
  cachedPossibleCpus ??= check("count possible CPUs", () => libbpf().libbpf_num_possible_cpus());
  return cachedPossibleCpus;
}

/** The value codec for a per-CPU map whose C value type is `element`. */
export function perCpu<T>(element: Codec<T>, cpus = possibleCpus()): PerCpuCodec<T> {
  return new PerCpuCodec(element, cpus);
}
