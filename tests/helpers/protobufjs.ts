/**
 * protobufjs over the embedded Hubble descriptor: the independent reference the tests check our
 * own codec (src/hubble/proto/wire.ts) against, and the benchmarks' baseline client.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import protobuf from "protobufjs";
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

function codec(type: protobuf.Type) {
  return {
    serialize: (value: object) => Buffer.from(type.encode(value as protobuf.Message).finish()),
    deserialize: (bytes: Buffer) => type.toObject(type.decode(bytes), DECODE_OPTIONS),
  };
}

/** grpc-js service definition of `name` with protobufjs doing the (de)serialization. */
export function protobufjsServiceDefinition(name: string): ServiceDefinition {
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
