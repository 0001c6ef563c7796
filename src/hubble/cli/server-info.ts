/** `hubble status` and `hubble list nodes|namespaces`: unary calls printed as upstream prints them. */
import { formatNamespaces, formatNodes, formatServerStatus, type ListFormat, type NamespaceInfo, type NodeInfo, type ServerStatus, type StatusFormat } from "../printer/status.ts";
import { parseFlags, UsageError, type FlagKind } from "./args.ts";
import { SERVER_FLAGS, SERVER_SHORTS, ServerSettings } from "./connection.ts";
import { writeAllSync } from "./stdout.ts";

/** The service name the Hubble server's health status is registered under. */
const OBSERVER_HEALTH_SERVICE = "hubble.server.Observer";
const SERVING = 1;
const HEALTH_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

function parseCommand(argv: readonly string[], env: Record<string, string | undefined>, defaultOutput: string, command: string) {
  const server = new ServerSettings(env);
  let output = defaultOutput;
  const flags: Record<string, FlagKind> = { output: "value", ...SERVER_FLAGS };
  const positionals = parseFlags(argv, { kind: (n) => flags[n], shorts: { o: "output", ...SERVER_SHORTS } }, (name, value) => {
    if (name === "output") output = value;
    else server.set(name, value);
  });
  if (positionals.length > 0) throw new UsageError(`unknown command "${positionals[0]}" for "${command}"`);
  return { server, output };
}

export async function status(argv: readonly string[], env: Record<string, string | undefined>): Promise<void> {
  const { server, output: raw } = parseCommand(argv, env, "compact", "hubble status");
  const output = ({ JSON: "json", jsonpb: "json", tab: "table" } as Record<string, string>)[raw] ?? raw;
  if (!["compact", "dict", "json", "table"].includes(output)) throw new UsageError(`invalid output format: ${raw}`);
  const client = await server.connect();
  try {
    let health: { status?: number };
    try {
      health = await client.unary("/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest", "grpc.health.v1.HealthCheckResponse", { service: OBSERVER_HEALTH_SERVICE }, server.requestTimeoutMs);
    } catch (err) {
      throw new Error(`failed getting status: ${(err as Error).message}`);
    }
    const healthy = health.status === SERVING;
    // The gRPC target, as upstream names it: the address without its tls:// prefix.
    const via = server.server.replace(/^tls:\/\//, "");
    if (output === "compact") writeAllSync(1, `Healthcheck (via ${via}): ${healthy ? "Ok" : `Unavailable: ${HEALTH_STATUS[health.status ?? 0] ?? health.status}`}\n`);
    if (!healthy) throw new Error("not healthy");
    let res: ServerStatus;
    try {
      res = await client.unary("/observer.Observer/ServerStatus", "observer.ServerStatusRequest", "observer.ServerStatusResponse", {}, server.requestTimeoutMs);
    } catch (err) {
      throw new Error(`failed to get hubble server status: ${(err as Error).message}`);
    }
    writeAllSync(1, formatServerStatus(res, output as StatusFormat));
  } finally {
    client.close();
  }
}

function listFormat(output: string): ListFormat {
  if (output !== "json" && output !== "table" && output !== "wide") throw new UsageError(`unknown output format: ${output}`);
  return output;
}

export async function listNodes(argv: readonly string[], env: Record<string, string | undefined>): Promise<void> {
  const { server, output } = parseCommand(argv, env, "table", "hubble list nodes");
  const format = listFormat(output);
  const client = await server.connect();
  try {
    const res = await client.unary<{ nodes?: NodeInfo[] }>("/observer.Observer/GetNodes", "observer.GetNodesRequest", "observer.GetNodesResponse", {}, server.requestTimeoutMs);
    writeAllSync(1, formatNodes(res.nodes ?? [], format));
  } finally {
    client.close();
  }
}

export async function listNamespaces(argv: readonly string[], env: Record<string, string | undefined>): Promise<void> {
  const { server, output } = parseCommand(argv, env, "table", "hubble list namespaces");
  const format = listFormat(output);
  const client = await server.connect();
  try {
    const res = await client.unary<{ namespaces?: NamespaceInfo[] }>("/observer.Observer/GetNamespaces", "observer.GetNamespacesRequest", "observer.GetNamespacesResponse", {}, server.requestTimeoutMs);
    writeAllSync(1, formatNamespaces(res.namespaces ?? [], format));
  } finally {
    client.close();
  }
}
