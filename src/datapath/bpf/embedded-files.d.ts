/** Files imported `with { type: "file" }` resolve to a path (in Bun's embedded FS when compiled). */
declare module "*.so" {
  const path: string;
  export default path;
}

/** BPF objects compiled from bpf/*.c by scripts/build-native.sh, embedded the same way. */
declare module "*.o" {
  const path: string;
  export default path;
}
