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

type Converter = (value: unknown) => Json;

function scalarConverter(field: FieldSchema): Converter {
  const e = field.enumType;
  if (e) return (v) => e.valuesById[v as number] ?? (v as number);
  const type = field.scalar!;
  if (LONG_TYPES.has(type)) return (v) => String(v);
  if (type === "bytes") return (v) => Buffer.from(v as Uint8Array).toString("base64");
  return (v) => v as Json;
}

/** Converters per message type, built once: a flow stream converts thousands of messages a second. */
const converters = new Map<MessageSchema, Converter>();

function converterFor(type: MessageSchema): Converter {
  let conv = converters.get(type);
  if (conv) return conv;
  const fullName = type.fullName;
  if (fullName === "google.protobuf.Timestamp") {
    conv = (m) => formatTimestampJson(Number((m as Record<string, unknown>).seconds ?? 0), Number((m as Record<string, unknown>).nanos ?? 0));
  } else if (WRAPPERS.has(fullName)) {
    const field = type.fields[0]!;
    const inner = scalarConverter(field);
    const zero = field.scalar === "bool" ? false : field.scalar === "string" ? "" : 0;
    conv = (m) => inner((m as Record<string, unknown>).value ?? zero);
  } else {
    // Registered before its fields are built: a message type may contain itself.
    const fields: { name: string; repeated: boolean; presence: boolean; convert: Converter }[] = [];
    conv = (m) => {
      const msg = m as Record<string, unknown>;
      const out: Record<string, Json> = {};
      for (const f of fields) {
        const v = msg[f.name];
        if (v === undefined || v === null) continue;
        if (f.repeated) {
          const list = v as unknown[];
          if (list.length > 0) out[f.name] = list.map(f.convert);
        } else if (f.presence || (v !== 0 && v !== false && v !== "" && v !== 0n && v !== "0")) out[f.name] = f.convert(v);
      }
      return out;
    };
    converters.set(type, conv);
    for (const field of type.fields) {
      const message = field.message;
      // Members of a oneof and messages are present whenever set; other fields only when not default.
      fields.push({ name: field.name, repeated: field.repeated, presence: field.inOneof || message !== undefined, convert: message ? converterFor(message) : scalarConverter(field) });
    }
  }
  converters.set(type, conv);
  return conv;
}

/** One message object (of type `type`) as its JSON value. */
export function messageToJson(type: MessageSchema, message: Record<string, unknown>): Json {
  return converterFor(type)(message);
}

/** `message` as JSON of the named type ("observer.GetFlowsResponse"). */
export function toJsonValue(typeName: string, message: object): Json {
  return messageToJson(messageSchema(typeName), message as Record<string, unknown>);
}

/** `message` of the named type ("observer.GetFlowsResponse") as one line of compact JSON. */
export function toJsonLine(typeName: string, message: object): string {
  return JSON.stringify(toJsonValue(typeName, message));
}
