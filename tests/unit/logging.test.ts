import { describe, expect, test } from "bun:test";
import { logOptionsFromArgv } from "../../src/logging/options.ts";

describe("logging options from argv", () => {
  test("reads --debug and --log-format anywhere before --", () => {
    expect(logOptionsFromArgv(["agent", "--debug", "--log-format", "json"])).toEqual({ debug: true, format: "json" });
    expect(logOptionsFromArgv(["-D", "--log-format=text"])).toEqual({ debug: true, format: "text" });
    expect(logOptionsFromArgv(["x", "--", "--debug"])).toEqual({});
  });

  test("rejects an unknown format with a message naming the flag", () => {
    expect(() => logOptionsFromArgv(["--log-format", "xml"])).toThrow('--log-format must be "text" or "json", got "xml"');
  });
});

describe("log output", () => {
  const run = (args: string[]) =>
    Bun.spawnSync(["bun", "-e", `
      import { configureLogging, logOptionsFromArgv, logger } from "./src/logging/index.ts";
      configureLogging(logOptionsFromArgv(${JSON.stringify(args)}));
      const log = logger("daemon");
      log.debug("hidden unless debug");
      log.info("agent started", { nodeName: "n1" });
    `], { cwd: `${import.meta.dir}/../..`, env: { ...process.env, NO_COLOR: "1" } });

  test("JSON lines on stderr with --log-format json", () => {
    const r = run(["--log-format", "json"]);
    expect(r.stdout.toString()).toBe("");
    const lines = r.stderr.toString().trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "info", msg: "agent started", subsys: "daemon", nodeName: "n1" });
    expect(Date.parse(lines[0].time)).not.toBeNaN();
  });

  test("--debug adds debug lines", () => {
    const lines = run(["--log-format", "json", "--debug"]).stderr.toString().trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.level)).toEqual(["debug", "info"]);
  });

  test("text format off a terminal: the message as it is, then key=value pairs; not JSON", () => {
    const text = run([]).stderr.toString();
    expect(() => JSON.parse(text.trim().split("\n")[0]!)).toThrow();
    const lines = text.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe("[info] [daemon] agent started nodeName=n1");
  });
});
