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

/** How one message type goes to and from the wire. */
export interface MessageCodec {
  serialize(value: object): Buffer;
  deserialize(bytes: Buffer): object;
}

export interface MethodCodecs {
  name: string;
  requestStream: boolean;
  responseStream: boolean;
  request: MessageCodec;
  response: MessageCodec;
}

/** A grpc-js service definition of service `fullName` ("observer.Observer") from its methods' codecs. */
export function serviceDefinition(fullName: string, methods: readonly MethodCodecs[]): ServiceDefinition {
  const entries = methods.map((method) => {
    const definition = {
      path: `/${fullName}/${method.name}`,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: method.request.serialize,
      requestDeserialize: method.request.deserialize,
      responseSerialize: method.response.serialize,
      responseDeserialize: method.response.deserialize,
      originalName: method.name,
    };
    return [method.name, definition] as const;
  });
  return Object.fromEntries(entries) as ServiceDefinition;
}

function codec(typeName: string): MessageCodec {
  return {
    serialize: (value) => {
      const bytes = encodeMessage(typeName, value, { setDefaults: true });
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes) => decodeMessage(typeName, bytes, { arrays: true }),
  };
}

/** The definition of service `name` ("observer.Observer") for Server.addService / makeGenericClientConstructor. */
export function grpcServiceDefinition(name: string): ServiceDefinition {
  const service = serviceSchema(name);
  return serviceDefinition(
    service.fullName,
    service.methods.map((m) => ({ name: m.name, requestStream: m.requestStream, responseStream: m.responseStream, request: codec(m.requestType), response: codec(m.responseType) })),
  );
}
