/**
 * Inside a `bun build --compile` executable the embedded libbpf lives in Bun's virtual file
 * system: it must be extracted to a private directory (once) before dlopen.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = join(import.meta.dir, "../..");

describe("libbpf in a compiled executable", () => {
  const dir = mkdtempSync(join(tmpdir(), "tbpf-compiled-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("extracts the shared object once and uses it", async () => {
    const entry = join(dir, "entry.ts");
    writeFileSync(
      entry,
      `import { readFileSync } from "node:fs";
import { BpfObject, possibleCpus } from ${JSON.stringify(join(repo, "src/datapath/bpf/index.ts"))};
const object = BpfObject.open(readFileSync(process.argv[2]!), { name: "counter" });
console.log(JSON.stringify({ cpus: possibleCpus(), programs: object.programs().map((p) => p.name) }));
object.close();
`,
    );
    const executable = join(dir, "probe");
    const build = Bun.spawnSync([process.execPath, "build", "--compile", entry, "--outfile", executable], { cwd: repo });
    expect(build.stderr.toString()).not.toContain("error");
    expect(build.exitCode).toBe(0);

    const runtimeDir = join(dir, "runtime");
    const env = { ...process.env, XDG_RUNTIME_DIR: runtimeDir };
    const object = join(repo, "build/test-bpf/counter.o");
    for (let i = 0; i < 2; i++) {
      const run = Bun.spawnSync([executable, object], { env });
      expect(run.stderr.toString()).toBe("");
      const output = JSON.parse(run.stdout.toString());
      expect(output.cpus).toBeGreaterThan(0);
      expect(output.programs).toEqual(["count_ingress", "count_egress", "count_cgroup_egress"]);
    }
    const uid = process.getuid?.() ?? 0;
    const extracted = join(runtimeDir, `cilium-bun-${uid}`);
    expect(statSync(extracted).mode & 0o777).toBe(0o700);
    const files = readdirSync(extracted);
    expect(files).toHaveLength(1); // the second run reused the first one's file
    expect(files[0]).toMatch(/^libbpf-embed-[0-9a-f]{16}\.so$/);
    expect(existsSync(join(extracted, files[0]!))).toBe(true);
  }, 60_000);
});
