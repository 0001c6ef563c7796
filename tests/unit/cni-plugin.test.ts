import { describe, expect, test } from "bun:test";
import { runCni, type CniHandlers } from "../../src/cni/plugin.ts";
import { parseCniArgs, validInterfaceName } from "../../src/cni/env.ts";

const baseEnv = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c0ffee", CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" };
const config = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: "1.0.0", name: "cilium", type: "cilium-cni", ...extra });

async function invoke(env: Record<string, string>, stdin: string, handlers: CniHandlers = {}) {
  let stdout = "";
  let stderr = "";
  const code = await runCni(
    { env, readStdin: async () => stdin, writeStdout: (t) => void (stdout += t), writeStderr: (t) => void (stderr += t) },
    handlers,
  );
  return { code, stdout, stderr, json: stdout ? JSON.parse(stdout) : undefined };
}

describe("CNI VERSION", () => {
  test("answers the supported versions, whatever the input", async () => {
    for (const stdin of ["", '{"cniVersion":"0.4.0"}', "not json"]) {
      const r = await invoke({ CNI_COMMAND: "VERSION" }, stdin);
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: "1.1.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
    }
  });

  test("without CNI_COMMAND prints what it is on stderr and nothing on stdout", async () => {
    const r = await invoke({}, "");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0");
  });
});

describe("CNI errors follow the spec", () => {
  test("unknown command is code 4", async () => {
    const r = await invoke({ ...baseEnv, CNI_COMMAND: "FROB" }, config());
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "1.1.0", code: 4, msg: "unknown CNI_COMMAND: FROB" });
  });

  test("missing environment is code 4 and names the variable", async () => {
    const { CNI_NETNS: _, ...env } = baseEnv;
    const r = await invoke(env, config());
    expect(r.json.code).toBe(4);
    expect(r.json.msg).toContain("CNI_NETNS");
  });

  test("bad container id and interface name are code 4", async () => {
    expect((await invoke({ ...baseEnv, CNI_CONTAINERID: "-bad id" }, config())).json.code).toBe(4);
    expect((await invoke({ ...baseEnv, CNI_IFNAME: "a/b" }, config())).json.code).toBe(4);
    expect((await invoke({ ...baseEnv, CNI_IFNAME: "much-too-long-name" }, config())).json.code).toBe(4);
  });

  test("malformed JSON is code 6 (decoding failure)", async () => {
    const r = await invoke(baseEnv, "{not json");
    expect(r.code).toBe(1);
    expect(r.json.code).toBe(6);
    expect(r.json.msg).toStartWith("cannot decode network config");
  });

  test("a JSON array is code 6", async () => {
    expect((await invoke(baseEnv, "[]")).json.code).toBe(6);
  });

  test("unknown cniVersion is code 1 and the error echoes the config's version", async () => {
    const r = await invoke(baseEnv, config({ cniVersion: "2.0.0" }));
    expect(r.json.code).toBe(1);
    expect(r.json.cniVersion).toBe("2.0.0");
    expect(r.json.msg).toContain('config is "2.0.0"');
    expect(r.json.details).toContain("newer");
  });

  test("invalid fields are code 7 and name the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ cniVersion: undefined }, '"cniVersion"'],
      [{ name: "" }, '"name"'],
      [{ name: "bad name" }, '"name"'],
      [{ type: 5 }, '"type"'],
      [{ "socket-path": "relative.sock" }, '"socket-path"'],
      [{ mtu: 70000 }, '"mtu"'],
      [{ prevResult: [] }, '"prevResult"'],
      [{ "cni.dev/valid-attachments": [{ containerID: "x" }] }, '"cni.dev/valid-attachments[0]"'],
    ];
    for (const [extra, field] of cases) {
      const r = await invoke(baseEnv, config(extra));
      expect(r.json.code).toBe(7);
      expect(r.json.msg).toContain(field);
    }
  });

  test("a command without a handler is refused, not crashed", async () => {
    const r = await invoke(baseEnv, config());
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "1.0.0", code: 4, msg: "CNI_COMMAND ADD is not supported by this plugin" });
  });

  test("a handler's unexpected exception becomes a spec error, never a stack trace", async () => {
    const r = await invoke(baseEnv, config(), {
      ADD: async () => {
        throw new TypeError("boom");
      },
    });
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "1.0.0", code: 5, msg: "internal error: boom" });
  });

  test("a handler's result is printed on stdout", async () => {
    const r = await invoke(baseEnv, config({ "socket-path": "/tmp/agent.sock" }), {
      ADD: async (env, cfg) => ({ cniVersion: cfg.cniVersion, containerId: env.containerId, socket: cfg.socketPath }),
    });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: "1.0.0", containerId: "c0ffee", socket: "/tmp/agent.sock" });
  });
});

describe("CNI environment parsing", () => {
  test("CNI_ARGS pairs", () => {
    expect([...parseCniArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0")]).toEqual([
      ["IgnoreUnknown", "1"],
      ["K8S_POD_NAMESPACE", "default"],
      ["K8S_POD_NAME", "web-0"],
    ]);
    expect(() => parseCniArgs("novalue")).toThrow("not KEY=VALUE");
  });

  test("interface names", () => {
    expect(validInterfaceName("eth0")).toBe(true);
    expect(validInterfaceName("123456789012345")).toBe(true);
    expect(validInterfaceName("1234567890123456")).toBe(false);
    expect(validInterfaceName("a b")).toBe(false);
    expect(validInterfaceName("..")).toBe(false);
  });
});

describe("commands newer than the config's version", () => {
  test("CHECK with a 0.3.x config and STATUS/GC before 1.1.0 are refused with code 1, before any handler runs", async () => {
    let called = false;
    const handlers: CniHandlers = {
      CHECK: async () => void (called = true),
      STATUS: async () => void (called = true),
      GC: async () => void (called = true),
    };
    const check = await invoke({ ...baseEnv, CNI_COMMAND: "CHECK" }, config({ cniVersion: "0.3.1" }), handlers);
    expect(check.json).toMatchObject({ cniVersion: "0.3.1", code: 1 });
    expect(check.json.msg).toContain("does not allow CHECK");
    for (const command of ["STATUS", "GC"]) {
      const r = await invoke({ CNI_COMMAND: command }, config({ cniVersion: "1.0.0" }), handlers);
      expect(r.json.code).toBe(1);
    }
    expect(called).toBe(false);
    expect((await invoke({ CNI_COMMAND: "STATUS" }, config({ cniVersion: "1.1.0" }), handlers)).code).toBe(0);
  });
});

describe("start-up", () => {
  test("VERSION loads neither the agent client nor netlink: command modules are imported lazily", () => {
    const script = `
      const { runCni } = await import("./src/cni/plugin.ts");
      const { commandHandlers } = await import("./src/cni/commands.ts");
      await runCni({ env: { CNI_COMMAND: "VERSION" }, readStdin: async () => "", writeStdout() {}, writeStderr() {} }, commandHandlers);
      console.log(JSON.stringify(Object.keys(require.cache)));`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { cwd: `${import.meta.dir}/../..` });
    expect(r.exitCode).toBe(0);
    const loaded: string[] = JSON.parse(r.stdout.toString());
    expect(loaded.some((path) => path.endsWith("src/cni/plugin.ts"))).toBe(true);
    expect(loaded.filter((path) => /src\/(datapath|agent)\/|src\/cni\/(add|del|check|status|gc)\.ts/.test(path))).toEqual([]);
  });
});
