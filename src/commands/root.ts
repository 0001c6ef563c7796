/** The `cilium` command tree. Subcommands load lazily; only what works is listed. */
import { defineCommand, type CommandDef } from "citty";
import { VERSION } from "../version.ts";

const lazy = (load: () => Promise<{ default: CommandDef<any> }>) => () => load().then((m) => m.default);

export default defineCommand({
  meta: { name: "cilium", version: VERSION, description: "eBPF-based networking, security and observability" },
  args: {
    debug: { type: "boolean", alias: "D", description: "Enable debug messages" },
    "log-format": { type: "string", description: "Log format: text or json", default: "text" },
  },
  subCommands: {
    agent: lazy(() => import("./agent.ts")),
    bpf: lazy(() => import("./bpf.ts")),
    cni: lazy(() => import("./cni.ts")),
    endpoint: lazy(() => import("./endpoint.ts")),
    hubble: lazy(() => import("./hubble.ts")),
    identity: lazy(() => import("./identity.ts")),
    monitor: lazy(() => import("./monitor.ts")),
    operator: lazy(() => import("./operator.ts")),
    policy: lazy(() => import("./policy.ts")),
    relay: lazy(() => import("./relay.ts")),
    status: lazy(() => import("./status.ts")),
    version: lazy(() => import("./version.ts")),
  },
});
