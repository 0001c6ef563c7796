import { defineCommand } from "citty";
import { agentClient, hostArg, outputArg, outputFormat, runCliAction } from "../agent/cli/connection.ts";
import { formatEndpointList } from "../agent/cli/endpoint-format.ts";
import { repeatedFlag } from "../agent/cli/policy-format.ts";

const list = defineCommand({
  meta: { name: "list", alias: "ls", description: "List all endpoints" },
  args: {
    host: hostArg,
    output: outputArg,
    headers: { type: "boolean", default: true, description: "Print headers", negativeDescription: "Do not print headers" },
  },
  run: ({ args }) =>
    runCliAction(
      async () => {
        const format = outputFormat(args.output);
        const endpoints = await agentClient(args.host).endpoints();
        if (format === "json") console.log(JSON.stringify(endpoints, null, 2));
        else process.stdout.write(formatEndpointList(endpoints, { headers: args.headers !== false }));
      },
      () => "cannot get endpoint list",
    ),
});

const get = defineCommand({
  meta: { name: "get", description: "Display endpoint information as JSON" },
  args: {
    id: { type: "positional", required: true, description: "Endpoint: numeric ID, container-id:<id>, cni-attachment-id:<container id>:<ifname>, pod-name:<ns>/<pod> or ipv4:<address>" },
    host: hostArg,
    output: outputArg,
  },
  run: ({ args }) =>
    runCliAction(
      async () => {
        outputFormat(args.output);
        const endpoint = await agentClient(args.host).endpoint(args.id);
        // As upstream: a list of the matching endpoints, JSON whatever -o says.
        console.log(JSON.stringify([endpoint], null, 2));
      },
      () => `cannot get endpoint ${args.id}`,
    ),
});

const labels = defineCommand({
  meta: { name: "labels", description: "Add or delete labels of an endpoint: its identity and policy follow" },
  args: {
    id: { type: "positional", required: true, description: "Endpoint: numeric ID or reference (pod-name:<ns>/<pod>, ...)" },
    add: { type: "string", alias: "a", description: "Label to add, source:key=value (repeatable)" },
    delete: { type: "string", alias: "d", description: "Label to delete: source:key, key, or source:key=value (repeatable)" },
    host: hostArg,
    output: outputArg,
  },
  run: ({ args, rawArgs }) =>
    runCliAction(
      async () => {
        const format = outputFormat(args.output);
        const add = repeatedFlag(rawArgs, ["-a", "--add"]);
        const remove = repeatedFlag(rawArgs, ["-d", "--delete"]);
        if (add.length === 0 && remove.length === 0) throw new Error("give labels to --add or --delete");
        const endpoint = await agentClient(args.host).patchEndpointLabels(args.id, { add, delete: remove });
        if (format === "json") console.log(JSON.stringify(endpoint, null, 2));
        else {
          console.log(`Endpoint ${endpoint.id}: identity ${endpoint.identity ?? "none"}, ${endpoint.state}`);
          for (const label of endpoint.labels) console.log(`  ${label}`);
        }
      },
      () => `cannot change the labels of endpoint ${args.id}`,
    ),
});

export default defineCommand({
  meta: { name: "endpoint", description: "Manage endpoints" },
  subCommands: { list, get, labels },
});
