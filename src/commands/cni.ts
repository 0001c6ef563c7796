import { defineCommand } from "citty";

export default defineCommand({
  meta: {
    name: "cni",
    description: "Run as the CNI plugin (as when invoked as cilium-cni): CNI_* from the environment, config on stdin",
  },
  async run() {
    const { main } = await import("../cni/plugin.ts");
    process.exitCode = await main();
  },
});
