import { defineCommand, type ArgsDef } from "citty";
import { buildInfo } from "../version.ts";

/** Upstream's way of failing: the message alone on stderr, exit status 1. */
async function runOrExit(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    const { writeAllSync } = await import("../hubble/cli/stdout.ts");
    writeAllSync(2, `${(err as Error).message}\n`);
    process.exit(1);
  }
}

const env = process.env as Record<string, string | undefined>;

/** Flags shown by --help (the commands parse their arguments themselves: --not depends on order). */
const serverArgs: ArgsDef = {
  server: { type: "string", description: "Address of a Hubble server: host:port, tls://host:port or unix:///path (env HUBBLE_SERVER)", default: "localhost:4245" },
  timeout: { type: "string", description: "Hubble server dialing timeout", default: "5s" },
  "request-timeout": { type: "string", description: "Unary request timeout (status, list)", default: "12s" },
  tls: { type: "boolean", description: "Use TLS to connect to the server" },
  "tls-allow-insecure": { type: "boolean", description: "Do not verify the server's certificate" },
  "tls-ca-cert-files": { type: "string", description: "PEM CA certificates to verify the server with (comma-separated)" },
  "tls-client-cert-file": { type: "string", description: "PEM client certificate for mTLS" },
  "tls-client-key-file": { type: "string", description: "PEM client key for mTLS" },
  "tls-server-name": { type: "string", description: "Server name to verify the certificate against" },
};

/** Filter flags for --help: values of one flag OR, different flags AND. */
const filterArgs: ArgsDef = {
  not: { type: "boolean", description: "Reverses the next filter to be a denylist one, e.g. --not --from-ip 2.2.2.2" },
  pod: { type: "string", description: "Flows from or to a pod name prefix ([namespace/]<pod-name>)" },
  "from-pod": { type: "string", description: "Flows from a pod name prefix" },
  "to-pod": { type: "string", description: "Flows to a pod name prefix" },
  namespace: { type: "string", alias: "n", description: "Flows from or to a Kubernetes namespace" },
  "from-namespace": { type: "string", description: "Flows from a namespace" },
  "to-namespace": { type: "string", description: "Flows to a namespace" },
  label: { type: "string", alias: "l", description: "Flows from or to an endpoint with labels (e.g. k8s:app=web, reserved:world)" },
  "from-label": { type: "string", description: "Flows from an endpoint with labels" },
  "to-label": { type: "string", description: "Flows to an endpoint with labels" },
  ip: { type: "string", description: "Flows from or to an IP address or CIDR" },
  "from-ip": { type: "string", description: "Flows from an IP address or CIDR" },
  "to-ip": { type: "string", description: "Flows to an IP address or CIDR" },
  identity: { type: "string", description: "Flows from or to a security identity (number or reserved name)" },
  "from-identity": { type: "string", description: "Flows from a security identity" },
  "to-identity": { type: "string", description: "Flows to a security identity" },
  port: { type: "string", description: "Flows with this source or destination port" },
  "from-port": { type: "string", description: "Flows with this source port" },
  "to-port": { type: "string", description: "Flows with this destination port" },
  verdict: { type: "string", description: "FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED" },
  type: { type: "string", alias: "t", description: "Event type TYPE[:SUBTYPE]: drop, trace[:to-endpoint|from-endpoint|...], policy-verdict, capture, l7, trace-sock" },
  protocol: { type: "string", description: "L4/L7 protocol (tcp, udp, icmp, sctp, ...)" },
  "tcp-flags": { type: "string", description: "TCP flags that must all be set (e.g. syn or syn,ack)" },
  "traffic-direction": { type: "string", description: "ingress or egress" },
  "node-name": { type: "string", description: "Node name pattern (e.g. k8s*)" },
  "drop-reason-desc": { type: "string", description: "Drop reason (e.g. POLICY_DENIED)" },
};

const observe = defineCommand({
  meta: {
    name: "observe",
    description: "Observe flows of a Hubble server",
  },
  args: {
    last: { type: "string", description: "Get last N flows stored in Hubble's buffer (default 20)" },
    first: { type: "string", description: "Get first N flows stored in Hubble's buffer" },
    all: { type: "boolean", description: "Get all flows stored in Hubble's buffer" },
    follow: { type: "boolean", alias: "f", description: "Follow flows output" },
    since: { type: "string", description: "Flows since a time: relative (5m, 1h) or 2006-01-02, RFC3339, RFC1123Z" },
    until: { type: "string", description: "Flows until a time (same formats as --since)" },
    output: { type: "string", alias: "o", description: "compact, dict, json (alias for jsonpb), jsonpb, table", default: "compact" },
    "print-node-name": { type: "boolean", description: "Print node name in output" },
    "time-format": { type: "string", description: "StampMilli, YearMonthDay, YearMonthDayHour, YearMonthDayHourMinute, RFC3339, RFC3339Milli, RFC3339Micro, RFC3339Nano, RFC1123Z", default: "StampMilli" },
    "ip-translation": { type: "boolean", description: "Translate IP addresses to pod and service names (default true; --ip-translation=false or --numeric to turn off)" },
    numeric: { type: "boolean", description: "Display all information in numeric form" },
    ...filterArgs,
    ...serverArgs,
  },
  run: ({ rawArgs }) =>
    runOrExit(async () => {
      const { parseObserveArgs, observe: run } = await import("../hubble/cli/observe.ts");
      await run(parseObserveArgs(rawArgs, env, Date.now()));
    }),
});

const status = defineCommand({
  meta: { name: "status", description: "Display status of Hubble server" },
  args: { output: { type: "string", alias: "o", description: "compact, dict, json, table", default: "compact" }, ...serverArgs },
  run: ({ rawArgs }) => runOrExit(async () => (await import("../hubble/cli/server-info.ts")).status(rawArgs, env)),
});

const listOutput: ArgsDef = { output: { type: "string", alias: "o", description: "json, table, wide", default: "table" } };

const nodes = defineCommand({
  meta: { name: "nodes", description: "List Hubble nodes" },
  args: { ...listOutput, ...serverArgs },
  run: ({ rawArgs }) => runOrExit(async () => (await import("../hubble/cli/server-info.ts")).listNodes(rawArgs, env)),
});

const list = defineCommand({
  meta: { name: "list", description: "List Hubble objects" },
  subCommands: {
    nodes,
    // upstream's alias
    node: nodes,
    namespaces: defineCommand({
      meta: { name: "namespaces", description: "List namespaces with recent flows" },
      args: { ...listOutput, ...serverArgs },
      run: ({ rawArgs }) => runOrExit(async () => (await import("../hubble/cli/server-info.ts")).listNamespaces(rawArgs, env)),
    }),
  },
});

const version = defineCommand({
  meta: { name: "version", description: "Display the hubble CLI version" },
  async run() {
    const info = await buildInfo();
    console.log(`hubble ${info.version} compiled with bun ${info.bun} on linux/${process.arch}`);
  },
});

/** The Hubble CLI, as `hubble ...` or `cilium hubble ...`. */
export default defineCommand({
  meta: { name: "hubble", description: "Hubble: network flow observability for Cilium" },
  subCommands: { observe, status, list, version },
});
