import { describe, expect, test } from "bun:test";
import { ClusterPool } from "../../src/operator/cluster-pool.ts";
import { OperatorConfigError, parseOperatorConfig } from "../../src/operator/config.ts";

describe("ClusterPool", () => {
  const pool = new ClusterPool("10.220.0.0/16", 24);

  test("hands out the lowest free node CIDR", () => {
    expect(pool.next(new Set())).toBe("10.220.0.0/24");
    expect(pool.next(new Set(["10.220.0.0/24", "10.220.2.0/24"]))).toBe("10.220.1.0/24");
  });

  test("is exhausted when every node CIDR is taken", () => {
    const small = new ClusterPool("10.0.0.0/29", 30);
    expect(small.size).toBe(2);
    expect(small.next(new Set(["10.0.0.0/30", "10.0.0.4/30"]))).toBeUndefined();
  });

  test("knows its own node CIDRs", () => {
    expect(pool.contains("10.220.7.0/24")).toBe(true);
    expect(pool.contains("10.221.7.0/24")).toBe(false);
    expect(pool.contains("10.220.7.0/25")).toBe(false);
    expect(pool.contains("nonsense")).toBe(false);
  });

  test("a mask size outside cluster prefix..30 is refused", () => {
    expect(() => new ClusterPool("10.220.0.0/16", 8)).toThrow(/mask-size 8: must be 16-30/);
    expect(() => new ClusterPool("10.220.0.0/16", 31)).toThrow(/must be 16-30/);
  });
});

describe("parseOperatorConfig", () => {
  const etcd = { kvstore: "etcd", "kvstore-opt": "etcd.address=http://10.99.0.1:2379" };

  test("defaults", () => {
    const config = parseOperatorConfig(etcd, "host");
    expect(config.etcd.endpoints).toEqual(["http://10.99.0.1:2379"]);
    expect(config.pool).toBeUndefined();
    expect(config.identityGcIntervalMs).toBe(15 * 60_000);
    expect(config.nodesGcIntervalMs).toBe(5 * 60_000);
    expect(config.leaseDurationMs + config.retryPeriodMs).toBeLessThan(15_000);
    expect(config.id).toBe(`host-${process.pid}`);
  });

  test("cluster pool flags", () => {
    const config = parseOperatorConfig({ ...etcd, "cluster-pool-ipv4-cidr": "10.220.0.0/16", "cluster-pool-ipv4-mask-size": "26" }, "host");
    expect(config.pool?.maskSize).toBe(26);
    expect(config.pool?.size).toBe(1024);
  });

  test("every problem is named, all at once", () => {
    let error: unknown;
    try {
      parseOperatorConfig({ kvstore: "consul", "cluster-pool-ipv4-cidr": "10.220.0.1/16", "identity-gc-interval": "soon" }, "host");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OperatorConfigError);
    const problems = (error as OperatorConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain('--kvstore "consul"');
    expect(problems[1]).toContain("host bits set");
    expect(problems[2]).toContain('--identity-gc-interval "soon"');
  });

  test("a bad etcd address and a bad mask size are named", () => {
    expect(() => parseOperatorConfig({ kvstore: "etcd", "kvstore-opt": "etcd.address=nowhere" }, "h")).toThrow(/--kvstore-opt: etcd.address/);
    expect(() => parseOperatorConfig({ ...etcd, "cluster-pool-ipv4-cidr": "10.220.0.0/16", "cluster-pool-ipv4-mask-size": "x" }, "h")).toThrow(/mask-size "x"/);
  });
});
