/** The conntrack GC's dynamic interval and its options. */
import { describe, expect, test } from "bun:test";
import { configByOption, ConfigError, resolveAgentConfig, type HostFacts } from "../../src/agent/config.ts";
import { GC_DEFAULT_MAX_INTERVAL_MS, GC_MIN_INTERVAL_MS, GC_STARTING_INTERVAL_MS, nextGcInterval } from "../../src/agent/conntrack-gc.ts";

const host: HostFacts = { hostname: "n", groupId: () => 0, groupName: () => "root", primaryGid: 0 };
const resolve = (flags: Record<string, string>) => resolveAgentConfig({ flags: { "ipv4-range": "10.0.0.0/24", ...flags }, env: {} }, host);

describe("dynamic interval", () => {
  test("a pass that deleted much of the table brings the next one closer, down to 10 s", () => {
    expect(nextGcInterval(GC_STARTING_INTERVAL_MS, 0.5, GC_DEFAULT_MAX_INTERVAL_MS)).toBe(150_000);
    expect(nextGcInterval(GC_STARTING_INTERVAL_MS, 1, GC_DEFAULT_MAX_INTERVAL_MS)).toBe(30_000);
    expect(nextGcInterval(20_000, 0.9, GC_DEFAULT_MAX_INTERVAL_MS)).toBe(GC_MIN_INTERVAL_MS);
  });

  test("a pass that deleted little pushes the next one away, up to the maximum", () => {
    expect(nextGcInterval(GC_STARTING_INTERVAL_MS, 0, GC_DEFAULT_MAX_INTERVAL_MS)).toBe(450_000);
    expect(nextGcInterval(GC_DEFAULT_MAX_INTERVAL_MS, 0.01, GC_DEFAULT_MAX_INTERVAL_MS)).toBe(GC_DEFAULT_MAX_INTERVAL_MS);
    expect(nextGcInterval(GC_STARTING_INTERVAL_MS, 0, 60_000)).toBe(60_000);
  });

  test("in between, the interval stays", () => {
    expect(nextGcInterval(GC_STARTING_INTERVAL_MS, 0.1, GC_DEFAULT_MAX_INTERVAL_MS)).toBe(GC_STARTING_INTERVAL_MS);
  });
});

describe("--conntrack-gc-interval and --conntrack-gc-max-interval", () => {
  test("default 0s: dynamic, with the default ceiling", () => {
    const config = resolve({});
    expect(config.conntrackGcInterval).toBeUndefined();
    expect(config.conntrackGcMaxInterval).toBeUndefined();
    expect(configByOption(config)).toMatchObject({ "conntrack-gc-interval": "0s", "conntrack-gc-max-interval": "0s" });
  });

  test("Go durations", () => {
    expect(resolve({ "conntrack-gc-interval": "1m30s", "conntrack-gc-max-interval": "2h" })).toMatchObject({ conntrackGcInterval: 90_000, conntrackGcMaxInterval: 7_200_000 });
    expect(resolve({ "conntrack-gc-interval": "1500ms" }).conntrackGcInterval).toBe(1500);
  });

  test("anything else is refused, naming the option", () => {
    expect(() => resolve({ "conntrack-gc-interval": "soon" })).toThrow(ConfigError);
    expect(() => resolve({ "conntrack-gc-interval": "10" })).toThrow('--conntrack-gc-interval "10": must be a duration such as 30s, 5m or 1h30m');
  });
});
