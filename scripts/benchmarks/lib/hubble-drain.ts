/**
 * The streaming baseline for `hubble observe`: a @grpc/grpc-js client with protobufjs decoding
 * (the stock Node gRPC stack) that reads every flow of GetFlows and prints nothing.
 *
 * Usage: bun scripts/benchmarks/lib/hubble-drain.ts <socket> <count>
 */
import { credentials, makeGenericClientConstructor } from "@grpc/grpc-js";
import { protobufjsServiceDefinition } from "../../../tests/helpers/protobufjs.ts";

const socketPath = process.argv[2];
if (!socketPath) throw new Error("usage: hubble-drain.ts <socket> <count>");
const Observer = makeGenericClientConstructor(protobufjsServiceDefinition("observer.Observer"), "Observer");
const count = Number(process.argv[3]);
const client = new Observer(`unix:${socketPath}`, credentials.createInsecure()) as unknown as Record<string, (req: object) => NodeJS.EventEmitter>;
let flows = 0;
await new Promise<void>((resolve, reject) => {
  const stream = client.GetFlows!({ number: count });
  stream.on("data", (res: { flow?: unknown }) => {
    if (res.flow) flows++;
  });
  stream.on("end", () => resolve());
  stream.on("error", reject);
});
console.log(flows);
process.exit(0);
