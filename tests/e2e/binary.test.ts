/**
 * The compiled executable, as users run it: copied alone into an empty directory (no
 * node_modules, no source tree, no clang on PATH) and invoked under its different names.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const built = join(import.meta.dir, "../../dist/cilium");
let dir: string;
let cilium: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cilium-bin-"));
  cilium = join(dir, "cilium");
  copyFileSync(built, cilium);
  Bun.spawnSync(["chmod", "755", cilium]);
  symlinkSync("cilium", join(dir, "cilium-cni"));
  copyFileSync(built, join(dir, "hubble"));
  Bun.spawnSync(["chmod", "755", join(dir, "hubble")]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(argv: string[], env: Record<string, string> = {}, stdin = "") {
  const r = Bun.spawnSync(argv, {
    cwd: dir,
    env: { PATH: "/usr/bin:/bin", NO_COLOR: "1", ...env },
    stdin: Buffer.from(stdin),
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("the single executable", () => {
  test("cilium version names version, commit, Bun and kernel", () => {
    const r = run([cilium, "version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Version:\s+\d+\.\d+\.\d+$/m);
    expect(r.stdout).toMatch(/^Git commit:\s+[0-9a-f]{12}(-dirty)?$/m);
    expect(r.stdout).toMatch(new RegExp(`^Bun:\\s+${Bun.version.replaceAll(".", "\\.")}$`, "m"));
    expect(r.stdout).toMatch(/^Kernel:\s+\d+\.\d+/m);
    const json = JSON.parse(run([cilium, "version", "-o", "json"]).stdout);
    expect(Object.keys(json).sort()).toEqual(["bun", "commit", "kernel", "version"]);
  });

  test("invoked as cilium-cni it is the CNI plugin", () => {
    const r = run([join(dir, "cilium-cni")], { CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.0.0"}');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: "1.1.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  });

  test("`cilium cni` is the same plugin", () => {
    const r = run([cilium, "cni"], { CNI_COMMAND: "VERSION" });
    expect(JSON.parse(r.stdout).cniVersion).toBe("1.1.0");
  });

  test("CNI errors are spec JSON with a non-zero exit and no stack trace", () => {
    const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "abc", CNI_NETNS: "/var/run/netns/none", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" };
    const garbage = run([join(dir, "cilium-cni")], env, "{{{");
    expect(garbage.code).not.toBe(0);
    expect(JSON.parse(garbage.stdout)).toMatchObject({ code: 6 });
    expect(garbage.stderr).not.toContain("at ");
    const tooNew = run([join(dir, "cilium-cni")], env, '{"cniVersion":"9.0.0","name":"n","type":"cilium-cni"}');
    expect(JSON.parse(tooNew.stdout)).toMatchObject({ code: 1, cniVersion: "9.0.0" });
  });

  test("invoked as hubble it is the Hubble CLI", () => {
    const help = run([join(dir, "hubble"), "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("USAGE hubble");
    const version = run([join(dir, "hubble"), "version"]);
    expect(version.stdout).toMatch(/^hubble \d+\.\d+\.\d+/);
  });

  test("invoked as cilium-agent it is the agent, and a bad option is a clear error", () => {
    symlinkSync("cilium", join(dir, "cilium-agent"));
    const help = run([join(dir, "cilium-agent"), "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--ipv4-range");
    const bad = run([join(dir, "cilium-agent"), "--ipv4-range", "10.0.0.0/33", "--state-dir", join(dir, "state"), "--socket-path", join(dir, "a.sock")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--ipv4-range");
  });

  test("the cilium command lists only working subcommands", () => {
    const r = run([cilium, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("cni");
    expect(r.stdout).toContain("version");
  });

  test("a bad --log-format is a clear error", () => {
    const r = run([cilium, "version", "--log-format", "yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--log-format must be "text" or "json", got "yaml"');
  });
});
