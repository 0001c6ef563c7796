import { defineCommand } from "citty";
import { AgentApiError } from "../agent/api/client.ts";
import type { StatusResponse } from "../agent/api/types.ts";
import { agentClient, hostArg, outputArg, outputFormat, runCliAction } from "../agent/cli/connection.ts";
import { formatStatus } from "../agent/cli/status-format.ts";

export default defineCommand({
  meta: { name: "status", description: "Display status of the agent" },
  args: {
    host: hostArg,
    output: outputArg,
    verbose: { type: "boolean", description: "Also show the kernel and datapath, every allocated address, endpoint ids by state and health" },
    brief: { type: "boolean", description: "Only print a one-line status message" },
  },
  run: ({ args }) =>
    runCliAction(async () => {
      const format = outputFormat(args.output);
      const status = await fetchStatus(args.host);
      if (format === "json") console.log(JSON.stringify(status, null, 2));
      else if (args.brief) console.log(status.cilium.state === "Ok" ? "OK" : `error in cilium: ${[status.cilium.msg, ...status.problems].filter(Boolean).join("; ")}`);
      else process.stdout.write(formatStatus(status, Boolean(args.verbose)));
      // As upstream: anything but Ok is a non-zero exit, for scripts and probes.
      return status.cilium.state === "Ok" ? 0 : 1;
    }),
});

/** The status, also when the agent answers 503 (Failure) with the status in the body. */
async function fetchStatus(host: string | undefined): Promise<StatusResponse> {
  try {
    return await agentClient(host).healthz();
  } catch (error) {
    const body = error instanceof AgentApiError ? (error.body as Partial<StatusResponse> | undefined) : undefined;
    if (error instanceof AgentApiError && error.status === 503 && body?.cilium && body.ipam && body.endpoints) return body as StatusResponse;
    throw error;
  }
}
