/**
 * One executable, many modes. argv[0] decides the mode when the binary is linked or copied under
 * another name (cilium-cni, hubble, cilium-agent, cilium-operator, hubble-relay); otherwise the
 * `cilium` command tree. Every mode's modules,
 * the CLI framework included, are imported only when that mode runs: the CNI plugin runs once
 * per pod and must start in milliseconds.
 */
import { configureLogging, logOptionsFromArgv } from "./logging/options.ts";

/** Modes selected by the name the executable was invoked as; anything else is `cilium`. */
const modes: Record<string, () => Promise<void>> = {
  "cilium-cni": async () => {
    const { main } = await import("./cni/plugin.ts");
    // main() has flushed its output: exiting at once spares the runtime's own wind-down.
    process.exit(await main());
  },
  hubble: async () => {
    const [{ runMain }, { default: hubble }] = await Promise.all([import("citty"), import("./commands/hubble.ts")]);
    await runMain(hubble, { rawArgs: process.argv.slice(2) });
  },
  "cilium-agent": async () => {
    const [{ runMain }, { default: agent }] = await Promise.all([import("citty"), import("./commands/agent.ts")]);
    await runMain(agent, { rawArgs: process.argv.slice(2) });
  },
  "hubble-relay": async () => {
    const [{ runMain }, { default: relay }] = await Promise.all([import("citty"), import("./commands/relay.ts")]);
    await runMain(relay, { rawArgs: process.argv.slice(2) });
  },
  "cilium-operator": async () => {
    const [{ runMain }, { default: operator }] = await Promise.all([import("citty"), import("./commands/operator.ts")]);
    await runMain(operator, { rawArgs: process.argv.slice(2) });
  },
  cilium: async () => {
    const [{ runMain }, { default: cilium }] = await Promise.all([import("citty"), import("./commands/root.ts")]);
    await runMain(cilium, { rawArgs: process.argv.slice(2) });
  },
};

function invokedAs(): string {
  const argv0 = process.argv0;
  return argv0.slice(argv0.lastIndexOf("/") + 1);
}

try {
  configureLogging(logOptionsFromArgv(process.argv.slice(2)));
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
await (modes[invokedAs()] ?? modes.cilium!)();
