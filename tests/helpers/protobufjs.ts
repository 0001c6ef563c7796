/**
 * protobufjs over the embedded Hubble descriptor: the independent reference the tests check our
 * own codec (src/hubble/proto/wire.ts) against, and the benchmarks' baseline client.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { serviceDefinition, type MessageCodec } from "../../src/hubble/proto/grpc.ts";
import descriptor from "../../src/hubble/proto/descriptor.json" with { type: "json" };

export const protoRoot: protobuf.Root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);

export function messageType(name: string): protobuf.Type {
  return protoRoot.lookupType(name);
}

export function serviceType(name: string): protobuf.Service {
  return protoRoot.lookupService(name);
}

const enumCache = new Map<string, protobuf.Enum>();

/** The value's name in enum `enumName` ("flow.Verdict"), or undefined for an unknown number. */
export function enumName(enumName: string, value: number): string | undefined {
  let e = enumCache.get(enumName);
  if (e === undefined) {
    e = protoRoot.lookupEnum(enumName);
    enumCache.set(enumName, e);
  }
  return e.valuesById[value];
}

/** The number of `name` in enum `enumName`, or undefined. */
export function enumValue(enumName: string, name: string): number | undefined {
  return protoRoot.lookupEnum(enumName).values[name];
}

const DECODE_OPTIONS: protobuf.IConversionOptions = { longs: Number, enums: Number, arrays: true };

function codec(type: protobuf.Type): MessageCodec {
  return {
    serialize: (value) => Buffer.from(type.encode(value as protobuf.Message).finish()),
    deserialize: (bytes) => type.toObject(type.decode(bytes), DECODE_OPTIONS),
  };
}

/** grpc-js service definition of `name` with protobufjs doing the (de)serialization. */
export function protobufjsServiceDefinition(name: string): ServiceDefinition {
  const service = serviceType(name);
  service.resolveAll();
  return serviceDefinition(
    service.fullName.slice(1),
    service.methodsArray.map((m) => ({
      name: m.name,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      request: codec(m.resolvedRequestType!),
      response: codec(m.resolvedResponseType!),
    })),
  );
}
