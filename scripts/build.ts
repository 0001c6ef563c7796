#!/usr/bin/env bun
/**
 * Builds dist/cilium: the C parts first (scripts/build-native.sh: the self-contained libbpf
 * shared object and the BPF objects), then one compiled Bun executable that embeds them.
 * Heavy modules stay behind `await import()`; with splitting + bytecode the CLI modes start
 * in milliseconds. dist/cilium-cni, dist/hubble, dist/cilium-agent, dist/cilium-operator and dist/hubble-relay are links: argv[0] picks the mode.
 */
import { $ } from "bun";
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { etcd3ProtoPlugin } from "./etcd3-proto.ts";

const root = join(import.meta.dir, "..");
process.chdir(root);

await $`bash scripts/build-native.sh`;
// The Hubble protobuf descriptor (imported as JSON, so embedded in the executable).
await $`bun scripts/build-protos.ts`;

async function gitCommit(): Promise<string> {
  const head = await $`git rev-parse --short=12 HEAD`.nothrow().quiet();
  if (head.exitCode !== 0) return "unknown";
  const dirty = (await $`git status --porcelain --untracked-files=no`.nothrow().quiet()).stdout.toString().trim() !== "";
  return head.stdout.toString().trim() + (dirty ? "-dirty" : "");
}

mkdirSync("dist", { recursive: true });
const outfile = join("dist", "cilium");
const result = await Bun.build({
  entrypoints: ["src/main.ts"],
  target: "bun",
  format: "esm",
  splitting: true,
  bytecode: true,
  minify: true,
  define: { __GIT_COMMIT__: JSON.stringify(await gitCommit()) },
  // etcd3 loads .proto files at run time: inline them (see scripts/etcd3-proto.ts).
  plugins: [etcd3ProtoPlugin],
  compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}

for (const alias of ["cilium-cni", "hubble", "cilium-agent", "cilium-operator", "hubble-relay"]) {
  const link = join("dist", alias);
  rmSync(link, { force: true });
  symlinkSync("cilium", link);
}
console.log(`built ${outfile}`);
