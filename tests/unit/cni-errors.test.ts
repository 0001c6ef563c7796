import { describe, expect, test } from "bun:test";
import { AgentApiError, AgentUnreachableError } from "../../src/agent/api/client.ts";
import { parseNetworkConfig } from "../../src/cni/config.ts";
import { agentError, interfaceError, isNotFound } from "../../src/cni/errors.ts";
import { Rollback } from "../../src/cni/rollback.ts";
import { assertCommandInVersion, CniError } from "../../src/cni/spec.ts";
import { SyscallError } from "../../src/datapath/errors.ts";

describe("agent failures as CNI errors", () => {
  test("an unreachable agent is try-again-later (11) and names the socket", () => {
    const error = agentError(new AgentUnreachableError("/run/cilium/cilium.sock", "ECONNREFUSED"), "ADD c:eth0: allocate an IP");
    expect(error.code).toBe(11);
    expect(error.message).toBe("ADD c:eth0: allocate an IP: cannot reach the cilium agent at /run/cilium/cilium.sock: ECONNREFUSED");
  });

  test("a busy or not-ready agent (429, 503) is also 11", () => {
    for (const status of [429, 503]) expect(agentError(new AgentApiError(status, "not ready"), "x").code).toBe(11);
  });

  test("other answers are 101 with the status and the agent's message", () => {
    const error = agentError(new AgentApiError(500, "policy map full"), "ADD c:eth0: create endpoint e");
    expect(error.code).toBe(101);
    expect(error.message).toBe("ADD c:eth0: create endpoint e: the cilium agent answered HTTP 500: policy map full");
  });

  test("a CniError passes through; anything else is an I/O failure (5)", () => {
    const original = new CniError(3, "gone");
    expect(agentError(original, "x")).toBe(original);
    expect(agentError(new Error("weird"), "step").code).toBe(5);
  });

  test("404 is recognised", () => {
    expect(isNotFound(new AgentApiError(404, "no"))).toBe(true);
    expect(isNotFound(new AgentApiError(500, "no"))).toBe(false);
  });

  test("the /v1/cni routes' own CNI code and details are answered as they are", () => {
    const body = { code: 507, message: "allocate an IP: IPAM pool 10.0.0.0/29 is exhausted", "cni-code": 100, details: "rollback incomplete: x" };
    const error = agentError(new AgentApiError(507, body.message, body), "ADD c:eth0");
    expect(error.code).toBe(100);
    expect(error.message).toBe("ADD c:eth0: allocate an IP: IPAM pool 10.0.0.0/29 is exhausted");
    expect(error.details).toBe("rollback incomplete: x");
  });
});

test("kernel failures are interface setup failures (102) keeping the operation text", () => {
  const error = interfaceError(new SyscallError("create veth lxc1/tmp1", 17), "ADD c:eth0: set up veth");
  expect(error.code).toBe(102);
  expect(error.message).toBe("ADD c:eth0: set up veth: create veth lxc1/tmp1: EEXIST (file exists)");
});

describe("rollback", () => {
  test("undoes newest first, carries on past failures and reports them", async () => {
    const done: string[] = [];
    const rollback = new Rollback();
    rollback.add("release IP", async () => void done.push("ip"));
    rollback.add("delete veth", () => {
      throw new Error("EBUSY");
    });
    rollback.add("delete endpoint", async () => void done.push("endpoint"));
    expect(await rollback.run()).toEqual(["delete veth: EBUSY"]);
    expect(done).toEqual(["endpoint", "ip"]);
    expect(await rollback.run()).toEqual([]);
  });
});

describe("commands by version", () => {
  test("CHECK needs 0.4.0, STATUS and GC need 1.1.0 (code 1)", () => {
    expect(() => assertCommandInVersion("CHECK", "0.3.1")).toThrow('config version "0.3.1" does not allow CHECK');
    expect(() => assertCommandInVersion("CHECK", "0.4.0")).not.toThrow();
    for (const command of ["STATUS", "GC"] as const) {
      expect(() => assertCommandInVersion(command, "1.0.0")).toThrow(CniError);
      expect(() => assertCommandInVersion(command, "1.1.0")).not.toThrow();
    }
    expect(() => assertCommandInVersion("ADD", "0.3.0")).not.toThrow();
  });
});

describe("network config extras", () => {
  const base = { cniVersion: "1.0.0", name: "n", type: "cilium-cni" };

  test("dns, convention labels and prevResult are read", () => {
    const config = parseNetworkConfig({
      ...base,
      dns: { nameservers: ["10.96.0.10"], domain: "cluster.local" },
      args: { cni: { labels: [{ key: "app", value: "web" }] } },
      prevResult: { cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24" }] },
    });
    expect(config.dns).toEqual({ nameservers: ["10.96.0.10"], domain: "cluster.local" });
    expect(config.labels).toEqual(["app=web"]);
    expect(config.prevResult?.ips).toEqual([{ address: "10.0.0.2/24" }]);
    expect(parseNetworkConfig(base).labels).toEqual([]);
  });

  test("malformed extras are code 7 naming the field", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ dns: "8.8.8.8" }, '"dns"'],
      [{ dns: { nameservers: "8.8.8.8" } }, '"dns.nameservers"'],
      [{ args: { cni: { labels: [{ key: "", value: "x" }] } } }, '"args.cni.labels[0]"'],
      [{ args: { cni: 5 } }, '"args.cni"'],
      [{ prevResult: { ips: [{}] } }, '"prevResult.ips[0].address"'],
    ];
    for (const [extra, field] of cases) {
      let caught: unknown;
      try {
        parseNetworkConfig({ ...base, ...extra });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CniError);
      expect((caught as CniError).code).toBe(7);
      expect((caught as CniError).message).toContain(field);
    }
  });
});
