/**
 * proto3 JSON mapping of our plain message objects, as upstream's `-o json`/`jsonpb` prints it
 * (Go protojson with proto field names): fields in declaration order, defaults omitted, enums by
 * name, 64-bit integers as strings, Timestamp as RFC 3339 in UTC, wrappers as bare values.
 */
import { messageSchema, type FieldSchema, type MessageSchema } from "./schema.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const LONG_TYPES = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const WRAPPERS = new Set([
  "google.protobuf.BoolValue",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
]);

/** RFC 3339 with 0, 3, 6 or 9 fractional digits, as protojson does. */
export function formatTimestampJson(seconds: number, nanos: number): string {
  const iso = new Date(seconds * 1000).toISOString().slice(0, 19);
  if (nanos === 0) return `${iso}Z`;
  let frac = String(nanos).padStart(9, "0");
  if (frac.endsWith("000000")) frac = frac.slice(0, 3);
  else if (frac.endsWith("000")) frac = frac.slice(0, 6);
  return `${iso}.${frac}Z`;
}

function scalar(field: FieldSchema, value: unknown): Json {
  if (field.enumType) return field.enumType.valuesById[value as number] ?? (value as number);
  const type = field.scalar!;
  if (LONG_TYPES.has(type)) return String(value);
  if (type === "bytes") return Buffer.from(value as Uint8Array).toString("base64");
  return value as Json;
}

function isDefault(field: FieldSchema, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (field.repeated) return (value as unknown[]).length === 0;
  // Members of a oneof and messages are present whenever set.
  if (field.inOneof || field.message) return false;
  return value === 0 || value === false || value === "" || value === 0n || value === "0";
}

function convert(field: FieldSchema, value: unknown): Json {
  const type = field.message;
  if (type === undefined) return scalar(field, value);
  return messageToJson(type, value as Record<string, unknown>);
}

/** One message object (of type `type`) as its JSON value. */
export function messageToJson(type: MessageSchema, message: Record<string, unknown>): Json {
  const fullName = type.fullName;
  if (fullName === "google.protobuf.Timestamp") return formatTimestampJson(Number(message.seconds ?? 0), Number(message.nanos ?? 0));
  if (WRAPPERS.has(fullName)) {
    const field = type.fields[0]!;
    return scalar(field, message.value ?? (field.scalar === "bool" ? false : field.scalar === "string" ? "" : 0));
  }
  const out: Record<string, Json> = {};
  for (const field of type.fields) {
    const value = message[field.name];
    if (isDefault(field, value)) continue;
    out[field.name] = field.repeated ? (value as unknown[]).map((v) => convert(field, v)) : convert(field, value);
  }
  return out;
}

/** `message` as JSON of the named type ("observer.GetFlowsResponse"). */
export function toJsonValue(typeName: string, message: object): Json {
  return messageToJson(messageSchema(typeName), message as Record<string, unknown>);
}

/** `message` of the named type ("observer.GetFlowsResponse") as one line of compact JSON. */
export function toJsonLine(typeName: string, message: object): string {
  return JSON.stringify(toJsonValue(typeName, message));
}
