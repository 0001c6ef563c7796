/**
 * grpc-js service definitions made from the embedded descriptor, with our own codec (wire.ts)
 * doing the (de)serialization: no protobufjs in the agent or the relay, whose Root of the Hubble
 * schema alone costs ~15 MB of RSS. Requests and responses are plain objects with proto field
 * names; 64-bit integers arrive as numbers (flow counts and timestamps stay far below 2^53);
 * repeated fields are always arrays and fields set to their default are written, as protobufjs
 * does: what the servers sent before, and what clients built against them expect.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import { serviceSchema } from "./schema.ts";
import { decodeMessage, encodeMessage } from "./wire.ts";

function codec(typeName: string) {
  return {
    serialize: (value: object) => {
      const bytes = encodeMessage(typeName, value, { setDefaults: true });
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes: Buffer) => decodeMessage(typeName, bytes, { arrays: true }),
  };
}

/** The definition of service `name` ("observer.Observer") for Server.addService / makeGenericClientConstructor. */
export function grpcServiceDefinition(name: string): ServiceDefinition {
  const service = serviceSchema(name);
  const entries = service.methods.map((method) => {
    const req = codec(method.requestType);
    const res = codec(method.responseType);
    const definition = {
      path: `/${service.fullName}/${method.name}`,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: method.name,
    };
    return [method.name, definition] as const;
  });
  return Object.fromEntries(entries) as ServiceDefinition;
}
