import { describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { EventEmitter } from "node:events";
import { FlowRing } from "../../src/hubble/ring.ts";
import { healthImplementation, Observer } from "../../src/hubble/server/index.ts";

/** Just enough of a grpc-js server stream: records writes, errors and the end. */
class FakeStream extends EventEmitter {
  written: unknown[] = [];
  ended = false;
  error: { code: number; details: string } | undefined;
  constructor(
    readonly request: object,
    private readonly capacity = Infinity,
  ) {
    super();
    this.on("error", (e) => (this.error = e));
  }
  sendMetadata(): void {}
  write(msg: unknown): boolean {
    this.written.push(msg);
    return this.written.length < this.capacity;
  }
  end(): void {
    this.ended = true;
  }
}

function observer(ring = new FlowRing(7)) {
  return new Observer({ ring, nodeName: "n", version: "v", now: () => ({ seconds: 1, nanos: 0 }) });
}

function unary(handler: Function, request: object): Promise<{ err: any; res: any }> {
  return new Promise((resolve) => handler({ request }, (err: any, res: any) => resolve({ err, res })));
}

describe("Observer.getFlows errors", () => {
  test("an unparsable filter is INVALID_ARGUMENT", async () => {
    const call = new FakeStream({ whitelist: [{ source_ip: ["nope/8"] }] });
    await observer().getFlows(call as any);
    expect(call.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(call.ended).toBe(false);
  });

  test("first with follow is INVALID_ARGUMENT", async () => {
    const call = new FakeStream({ first: true, follow: true });
    await observer().getFlows(call as any);
    expect(call.error).toMatchObject({ code: status.INVALID_ARGUMENT, details: "first and follow cannot be combined" });
  });

  test("waits for drain when write() says the stream is full", async () => {
    const ring = new FlowRing(7);
    for (let i = 0; i < 5; i++) ring.write({ uuid: String(i) });
    const call = new FakeStream({}, 2);
    const done = observer(ring).getFlows(call as any);
    await Bun.sleep(5);
    expect(call.written).toHaveLength(2);
    call.emit("drain");
    await Bun.sleep(5);
    expect(call.written).toHaveLength(3);
    (call as any).capacity = Infinity;
    call.emit("drain");
    await done;
    expect(call.written).toHaveLength(5);
    expect(call.ended).toBe(true);
  });

  test("cancellation ends a follower", async () => {
    const call = new FakeStream({ follow: true });
    const done = observer().getFlows(call as any);
    call.emit("cancelled");
    await done;
    expect(call.ended).toBe(false);
    expect(call.error).toBeUndefined();
  });
});

describe("health", () => {
  const impl = healthImplementation();
  test("SERVING for the observer and the server as a whole, NOT_FOUND otherwise", async () => {
    expect((await unary(impl.Check!, { service: "hubble.server.Observer" })).res).toEqual({ status: 1 });
    expect((await unary(impl.Check!, { service: "" })).res).toEqual({ status: 1 });
    expect((await unary(impl.Check!, { service: "x" })).err.code).toBe(status.NOT_FOUND);
  });
});
