import { describe, expect, test } from "bun:test";
import { ApiLatencyHistogram, LATENCY_BUCKETS } from "../../src/agent/api/metrics.ts";
import { errorResponse, STATUS_BY_KIND } from "../../src/agent/api/responses.ts";
import { Router } from "../../src/agent/api/router.ts";
import { AgentError } from "../../src/agent/errors.ts";
import { quietLogger } from "../helpers/agent-fake-datapath.ts";

describe("routing", () => {
  const ok = () => new Response("ok");
  const router = new Router().add("GET", "/v1/endpoint", ok).add("GET", "/v1/endpoint/{id}", ok).add("DELETE", "/v1/endpoint/{id}", ok);

  test("templates match and decode their parameters", () => {
    const match = router.match("GET", "/v1/endpoint/cni-attachment-id%3Ac1%3Aeth0");
    expect(match).toMatchObject({ found: true, template: "/v1/endpoint/{id}", params: { id: "cni-attachment-id:c1:eth0" } });
  });

  test("an unknown path has no allowed methods; a known one with the wrong method lists them", () => {
    expect(router.match("GET", "/v1/nothing")).toEqual({ found: false, allow: [] });
    expect(router.match("GET", "/v1/endpoint/")).toEqual({ found: false, allow: [] });
    expect(router.match("PATCH", "/v1/endpoint/3")).toEqual({ found: false, allow: ["GET", "DELETE"] });
  });

  test("bad percent-encoding is a 400, not a crash", () => {
    expect(() => router.match("GET", "/v1/endpoint/%E0%A4%A")).toThrow(AgentError);
  });
});

describe("error bodies", () => {
  test("each kind has its status, and the body is { code, message }", async () => {
    expect(STATUS_BY_KIND).toEqual({ invalid: 400, "not-found": 404, conflict: 409, exhausted: 507, datapath: 500, unavailable: 503 });
    const response = errorResponse(new AgentError("exhausted", "IPAM pool 10.0.0.0/30 is exhausted"), quietLogger()("api"));
    expect(response.status).toBe(507);
    expect(await response.json()).toEqual({ code: 507, message: "IPAM pool 10.0.0.0/30 is exhausted" });
  });

  test("anything else is a logged 500", async () => {
    const logged: string[] = [];
    const response = errorResponse(new TypeError("boom"), quietLogger(logged)("api"));
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ code: 500, message: "internal error: boom" });
    expect(logged).toEqual(["error internal error while serving a request"]);
  });
});

describe("API latency histogram", () => {
  test("cumulative buckets per method, template and status", () => {
    const histogram = new ApiLatencyHistogram();
    histogram.observe("GET", "/v1/endpoint/{id}", 200, 0.003);
    histogram.observe("GET", "/v1/endpoint/{id}", 200, 0.2);
    histogram.observe("GET", "/v1/endpoint/{id}", 404, 0.001);
    const [ok, missing] = histogram.snapshot();
    expect(ok).toMatchObject({ method: "GET", path: "/v1/endpoint/{id}", status: 200, count: 2 });
    expect(ok!.sumSeconds).toBeCloseTo(0.203);
    // Buckets 0.005 .. 0.1 hold the fast one; from 0.25 up both.
    expect(LATENCY_BUCKETS.slice(4, 6)).toEqual([0.1, 0.25]);
    expect(ok!.bucketCounts).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
    expect(missing!.count).toBe(1);
  });
});
