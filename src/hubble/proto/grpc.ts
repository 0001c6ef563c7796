/**
 * grpc-js service definitions made from the embedded protobufjs descriptor (no @grpc/proto-loader,
 * no .proto files at run time). Requests and responses are plain objects with proto field names;
 * 64-bit integers arrive as numbers (flow counts and timestamps stay far below 2^53).
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { serviceType } from "./index.ts";

const DECODE_OPTIONS: protobuf.IConversionOptions = { longs: Number, enums: Number, arrays: true };

function codec(type: protobuf.Type) {
  return {
    serialize: (value: object) => Buffer.from(type.encode(value as protobuf.Message).finish()),
    deserialize: (bytes: Buffer) => type.toObject(type.decode(bytes), DECODE_OPTIONS),
  };
}

/** The definition of service `name` ("observer.Observer") for Server.addService / makeGenericClientConstructor. */
export function grpcServiceDefinition(name: string): ServiceDefinition {
  const service = serviceType(name);
  service.resolveAll();
  const entries = service.methodsArray.map((method) => {
    const req = codec(method.resolvedRequestType!);
    const res = codec(method.resolvedResponseType!);
    const definition = {
      path: `/${service.fullName.slice(1)}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
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
