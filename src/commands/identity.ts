/** `cilium identity list|get`, as upstream's. */
import { defineCommand } from "citty";
import { agentClient, hostArg, outputArg, outputFormat, runCliAction } from "../agent/cli/connection.ts";
import { formatIdentities } from "../agent/cli/policy-format.ts";

const list = defineCommand({
  meta: { name: "list", alias: "ls", description: "List the identities the agent knows: reserved, its endpoints', CIDR" },
  args: { host: hostArg, output: outputArg },
  run: ({ args }) =>
    runCliAction(
      async () => {
        const format = outputFormat(args.output);
        const identities = await agentClient(args.host).identities();
        if (format === "json") console.log(JSON.stringify(identities, null, 2));
        else process.stdout.write(formatIdentities(identities));
      },
      () => "cannot list identities",
    ),
});

const get = defineCommand({
  meta: { name: "get", description: "Display one identity" },
  args: { id: { type: "positional", required: true, description: "Numeric identity" }, host: hostArg, output: outputArg },
  run: ({ args }) =>
    runCliAction(
      async () => {
        const format = outputFormat(args.output);
        const identity = await agentClient(args.host).identity(args.id);
        if (format === "json") console.log(JSON.stringify(identity, null, 2));
        else process.stdout.write(formatIdentities([identity]));
      },
      () => `cannot get identity ${args.id}`,
    ),
});

export default defineCommand({
  meta: { name: "identity", description: "Manage security identities" },
  subCommands: { list, get },
});
