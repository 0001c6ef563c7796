/** `cilium policy import|get|delete|wait|trace`, as upstream's. */
import { defineCommand } from "citty";
import { readFileSync } from "node:fs";
import { AgentApiError } from "../agent/api/client.ts";
import type { PolicyTraceRequest, TraceEndpoint } from "../agent/api/types.ts";
import { agentClient, hostArg, outputArg, outputFormat, runCliAction } from "../agent/cli/connection.ts";
import { formatTrace, parseDuration, repeatedFlag } from "../agent/cli/policy-format.ts";

async function readPolicy(path: string): Promise<string> {
  if (path === "-") return Bun.stdin.text();
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

const importCommand = defineCommand({
  meta: { name: "import", description: "Import a policy (JSON or YAML: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy or bare rules) from a file or - for stdin" },
  args: {
    path: { type: "positional", required: true, description: "Policy file, or - for stdin" },
    host: hostArg,
    replace: { type: "boolean", description: "Replace the rules that carry the labels of an imported rule" },
    "replace-with-labels": { type: "string", description: "Replace the rules that carry all of these labels (comma-separated)" },
  },
  run: ({ args, rawArgs }) =>
    runCliAction(
      async () => {
        const text = await readPolicy(args.path);
        const replaceWithLabels = repeatedFlag(rawArgs, ["--replace-with-labels"]);
        try {
          const { revision } = await agentClient(args.host).putPolicy(text, { replace: Boolean(args.replace), replaceWithLabels });
          console.log(`Revision: ${revision}`);
        } catch (error) {
          const issues = error instanceof AgentApiError ? (error.body as { issues?: unknown } | undefined)?.issues : undefined;
          if (!Array.isArray(issues)) throw error;
          console.error(`cannot import policy ${args.path}: nothing was changed; ${issues.length === 1 ? "1 problem" : `${issues.length} problems`}:`);
          for (const issue of issues) console.error(`  ${String(issue)}`);
          return 1;
        }
      },
      () => `cannot import policy ${args.path}`,
    ),
});

const get = defineCommand({
  meta: { name: "get", description: "Display the policy in force (the rules as JSON, then the revision)" },
  args: { host: hostArg, output: outputArg },
  run: ({ args }) =>
    runCliAction(
      async () => {
        const format = outputFormat(args.output);
        const policy = await agentClient(args.host).policy();
        if (format === "json") {
          console.log(JSON.stringify(policy, null, 2));
          return;
        }
        console.log(JSON.stringify(policy.policy, null, 2));
        console.log(`Revision: ${policy.revision}`);
      },
      () => "cannot get the policy",
    ),
});

const deleteCommand = defineCommand({
  meta: { name: "delete", description: "Delete the rules that carry all the given labels, or every rule with --all" },
  args: {
    labels: { type: "positional", required: false, description: "Labels of the rules to delete (source:key=value)" },
    all: { type: "boolean", description: "Delete every rule" },
    host: hostArg,
  },
  run: ({ args }) =>
    runCliAction(
      async () => {
        const labels = (args._ as string[]) ?? [];
        if (args.all && labels.length > 0) throw new Error("give labels or --all, not both");
        if (!args.all && labels.length === 0) throw new Error("give the labels of the rules to delete, or --all to delete every rule");
        const { revision } = await agentClient(args.host).deletePolicy(args.all ? { all: true } : { labels });
        console.log(`Revision: ${revision}`);
      },
      () => "cannot delete policy",
    ),
});

const wait = defineCommand({
  meta: { name: "wait", description: "Wait until every endpoint enforces at least the given policy revision" },
  args: {
    revision: { type: "positional", required: true, description: "Policy revision" },
    host: hostArg,
    "max-wait-time": { type: "string", default: "360s", description: "Give up after this long (e.g. 30s, 2m)" },
    "sleep-time": { type: "string", default: "200ms", description: "Time between checks" },
  },
  run: ({ args }) =>
    runCliAction(async () => {
      if (!/^\d+$/.test(args.revision)) throw new Error(`revision ${JSON.stringify(args.revision)}: must be a number`);
      const revision = Number(args.revision);
      const maxWait = parseDuration(args["max-wait-time"], "--max-wait-time");
      const sleep = parseDuration(args["sleep-time"], "--sleep-time");
      const client = agentClient(args.host);
      const deadline = Date.now() + maxWait;
      for (;;) {
        const endpoints = await client.endpoints();
        const behind = endpoints.filter((e) => (e.policy?.["realized-revision"] ?? 0) < revision);
        if (behind.length === 0) {
          console.log(`All ${endpoints.length} endpoints enforce policy revision ${revision} or later`);
          return 0;
        }
        if (Date.now() >= deadline) {
          const detail = behind
            .map((e) => `endpoint ${e.id} at revision ${e.policy?.["realized-revision"] ?? 0}${e.policy?.error ? ` (${e.state}: ${e.policy.error})` : ` (${e.state})`}`)
            .join(", ");
          throw new Error(`timed out after ${args["max-wait-time"]} waiting for policy revision ${revision}: ${behind.length} of ${endpoints.length} endpoints behind: ${detail}`);
        }
        await Bun.sleep(Math.min(sleep, Math.max(0, deadline - Date.now())));
      }
    }),
});

function traceSide(labels: string[], endpoint: string | undefined, flags: string): TraceEndpoint {
  if (endpoint !== undefined && labels.length > 0) throw new Error(`${flags}: give labels or an endpoint, not both`);
  if (endpoint !== undefined) return { endpoint };
  if (labels.length === 0) throw new Error(`${flags}: give labels or an endpoint`);
  return { labels };
}

const trace = defineCommand({
  meta: { name: "trace", description: "Trace the policy verdict for traffic from one set of labels (or endpoint) to another" },
  args: {
    src: { type: "string", alias: "s", description: "Source labels (source:key=value; repeat or comma-separate); cidr:<prefix> for an outside address" },
    "src-endpoint": { type: "string", description: "Source endpoint (ID or reference)" },
    dst: { type: "string", alias: "d", description: "Destination labels" },
    "dst-endpoint": { type: "string", description: "Destination endpoint (ID or reference)" },
    dport: { type: "string", description: "Destination port and protocol, e.g. 80/TCP (default protocol TCP)" },
    host: hostArg,
    output: outputArg,
  },
  run: ({ args, rawArgs }) =>
    runCliAction(
      async () => {
        const format = outputFormat(args.output);
        const request: PolicyTraceRequest = {
          from: traceSide(repeatedFlag(rawArgs, ["-s", "--src"]), args["src-endpoint"], "--src/--src-endpoint"),
          to: traceSide(repeatedFlag(rawArgs, ["-d", "--dst"]), args["dst-endpoint"], "--dst/--dst-endpoint"),
        };
        if (args.dport !== undefined) request.dport = args.dport;
        const result = await agentClient(args.host).tracePolicy(request);
        if (format === "json") console.log(JSON.stringify(result, null, 2));
        else process.stdout.write(formatTrace(result));
      },
      () => "cannot trace policy",
    ),
});

export default defineCommand({
  meta: { name: "policy", description: "Manage security policies" },
  subCommands: { import: importCommand, get, delete: deleteCommand, wait, trace },
});
