/**
 * startHubbleMetrics as the agent calls it: a flow hook in, /metrics over HTTP out, stop()
 * unsubscribing and closing the port; bad addresses and busy ports fail naming the flag.
 */
import { describe, expect, test } from "bun:test";
import { HubbleMetricsSpecError, startHubbleMetrics } from "../../src/hubble/metrics/index.ts";
import { MonitorEventType, Verdict, type Flow } from "../../src/hubble/flow/types.ts";

/** A stand-in for the daemon's onFlow hook. */
function flowHook() {
  const listeners = new Set<(flow: Flow) => void>();
  return {
    onFlow: (listener: (flow: Flow) => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    emit: (flow: Flow) => listeners.forEach((listener) => listener(flow)),
    get listeners() {
      return listeners.size;
    },
  };
}

const drop: Flow = {
  verdict: Verdict.DROPPED,
  drop_reason_desc: 133,
  IP: { source: "10.0.0.1", destination: "10.0.0.2", ipVersion: 1 },
  l4: { UDP: { source_port: 1234, destination_port: 53 } },
  source: { namespace: "shop" },
  event_type: { type: MonitorEventType.DROP, sub_type: 133 },
};

describe("startHubbleMetrics", () => {
  test("flows from the hook are served on /metrics; stop unsubscribes and closes the port", async () => {
    const hook = flowHook();
    const running = await startHubbleMetrics({ spec: "drop:sourceContext=namespace flow", listen: "127.0.0.1:0", onFlow: hook.onFlow });
    const url = `http://127.0.0.1:${running.port}/metrics`;
    hook.emit(drop);
    hook.emit(drop);
    const response = await fetch(url);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const lines = (await response.text()).split("\n");
    expect(lines).toContain('hubble_drop_total{protocol="UDP",reason="POLICY_DENIED",source="shop"} 2');
    expect(lines).toContain('hubble_flows_processed_total{protocol="UDP",subtype="",type="Drop",verdict="DROPPED"} 2');
    await running.stop();
    expect(hook.listeners).toBe(0);
    expect(await fetch(url).then(() => "answered", () => "refused")).toBe("refused");
  });

  test("a bad spec, a bad address and a busy port are errors; nothing stays subscribed", async () => {
    const hook = flowHook();
    expect(await startHubbleMetrics({ spec: "drop,dns", listen: "127.0.0.1:0", onFlow: hook.onFlow }).catch((e) => e)).toBeInstanceOf(HubbleMetricsSpecError);
    expect((await startHubbleMetrics({ spec: "drop", listen: "9965", onFlow: hook.onFlow }).catch((e) => e)).message).toBe(
      '--hubble-metrics-server "9965": must be "host:port" or ":port" (e.g. ":9962")',
    );
    const first = await startHubbleMetrics({ spec: "drop", listen: "127.0.0.1:0", onFlow: hook.onFlow });
    try {
      const busy = await startHubbleMetrics({ spec: "flow", listen: `127.0.0.1:${first.port}`, onFlow: hook.onFlow }).catch((e) => e);
      expect(busy.message).toBe(`--hubble-metrics-server "127.0.0.1:${first.port}": port ${first.port} is already in use on 127.0.0.1`);
      expect(hook.listeners).toBe(1);
    } finally {
      await first.stop();
    }
  });
});
