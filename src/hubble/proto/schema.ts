/**
 * A small reader of the embedded descriptor (protobufjs JSON form): message fields with their
 * resolved types, enums and services. protobufjs takes ~50 ms to build its Root from this
 * descriptor in a compiled binary, more than the hubble CLI's whole start-up budget, and ~15 MB
 * in the agent; this builds only the types a command or a call touches, on first use.
 */
import descriptor from "./descriptor.json" with { type: "json" };

interface JsonField {
  type: string;
  id: number;
  rule?: string;
  keyType?: string;
}

interface JsonMethod {
  requestType: string;
  responseType: string;
  requestStream?: boolean;
  responseStream?: boolean;
}

interface JsonNode {
  nested?: Record<string, JsonNode>;
  fields?: Record<string, JsonField>;
  oneofs?: Record<string, { oneof: string[] }>;
  values?: Record<string, number>;
  methods?: Record<string, JsonMethod>;
}

export const SCALAR_TYPES = new Set([
  "double",
  "float",
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
  "bool",
  "string",
  "bytes",
]);

export interface EnumSchema {
  readonly fullName: string;
  readonly valuesById: Readonly<Record<number, string>>;
  readonly values: Readonly<Record<string, number>>;
}

export interface FieldSchema {
  readonly name: string;
  readonly id: number;
  readonly repeated: boolean;
  /** Member of a oneof: present whenever set, even at its default value. */
  readonly inOneof: boolean;
  /** A scalar type name ("uint64"), or undefined when the field holds a message or an enum. */
  readonly scalar: string | undefined;
  /** The message type of a message field (resolved on first use: types may be recursive). */
  readonly message: MessageSchema | undefined;
  readonly enumType: EnumSchema | undefined;
}

export interface MessageSchema {
  readonly fullName: string;
  /** Declaration order, as protojson prints them. */
  readonly fields: readonly FieldSchema[];
  /** Field number order, as protobuf writes them. */
  readonly fieldsById: readonly FieldSchema[];
  readonly byId: ReadonlyMap<number, FieldSchema>;
}

const root = descriptor as JsonNode;
const messages = new Map<string, MessageSchema>();
const enums = new Map<string, EnumSchema>();

function node(fullName: string): JsonNode | undefined {
  let n: JsonNode | undefined = root;
  for (const part of fullName.split(".")) n = n?.nested?.[part];
  return n;
}

/** protobuf name resolution: `name` relative to scope a.b.C is tried as a.b.C.name, a.b.name, a.name, name. */
function resolve(scope: string, name: string): string {
  const parts = scope.split(".");
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), name].join(".");
    const n = node(candidate);
    if (n && (n.fields || n.values)) return candidate;
  }
  throw new Error(`protobuf type ${name} (used in ${scope}) is not in the descriptor`);
}

export function enumSchema(fullName: string): EnumSchema {
  let e = enums.get(fullName);
  if (e) return e;
  const values = node(fullName)?.values;
  if (!values) throw new Error(`protobuf enum ${fullName} is not in the descriptor`);
  const valuesById: Record<number, string> = {};
  // The first name of an aliased number is its canonical name.
  for (const [name, id] of Object.entries(values)) valuesById[id] ??= name;
  e = { fullName, values, valuesById };
  enums.set(fullName, e);
  return e;
}

/** A field; a message-typed field resolves its type on first use (types may be recursive). */
class Field implements FieldSchema {
  private resolved: MessageSchema | undefined;

  constructor(
    readonly name: string,
    readonly id: number,
    readonly repeated: boolean,
    readonly inOneof: boolean,
    readonly scalar: string | undefined,
    readonly enumType: EnumSchema | undefined,
    private readonly messageName: string | undefined,
  ) {}

  get message(): MessageSchema | undefined {
    if (this.resolved === undefined && this.messageName !== undefined) this.resolved = messageSchema(this.messageName);
    return this.resolved;
  }
}

function fieldSchema(scope: string, name: string, f: JsonField, inOneof: boolean): FieldSchema {
  if (f.keyType) throw new Error(`map field ${scope}.${name} is not supported`);
  const repeated = f.rule === "repeated";
  if (SCALAR_TYPES.has(f.type)) return new Field(name, f.id, repeated, inOneof, f.type, undefined, undefined);
  const target = resolve(scope, f.type);
  if (node(target)!.values) return new Field(name, f.id, repeated, inOneof, undefined, enumSchema(target), undefined);
  return new Field(name, f.id, repeated, inOneof, undefined, undefined, target);
}

export function messageSchema(fullName: string): MessageSchema {
  let m = messages.get(fullName);
  if (m) return m;
  const n = node(fullName);
  if (!n?.fields) throw new Error(`protobuf message ${fullName} is not in the descriptor`);
  const oneofMembers = new Set(Object.values(n.oneofs ?? {}).flatMap((o) => o.oneof));
  const fields = Object.entries(n.fields).map(([name, f]) => fieldSchema(fullName, name, f, oneofMembers.has(name)));
  m = { fullName, fields, fieldsById: [...fields].sort((a, b) => a.id - b.id), byId: new Map(fields.map((f) => [f.id, f])) };
  messages.set(fullName, m);
  return m;
}

/** The value's name in enum `fullName` ("flow.Verdict"), or undefined for an unknown number. */
export function enumName(fullName: string, value: number): string | undefined {
  return enumSchema(fullName).valuesById[value];
}

export interface MethodSchema {
  readonly name: string;
  /** Full names of the message types. */
  readonly requestType: string;
  readonly responseType: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

export interface ServiceSchema {
  readonly fullName: string;
  /** Declaration order. */
  readonly methods: readonly MethodSchema[];
}

/** Service `fullName` ("observer.Observer"): its methods with resolved message type names. */
export function serviceSchema(fullName: string): ServiceSchema {
  const methods = node(fullName)?.methods;
  if (!methods) throw new Error(`protobuf service ${fullName} is not in the descriptor`);
  const scope = fullName;
  return {
    fullName,
    methods: Object.entries(methods).map(([name, m]) => ({
      name,
      requestType: resolve(scope, m.requestType),
      responseType: resolve(scope, m.responseType),
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
    })),
  };
}
