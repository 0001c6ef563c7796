import { defineCommand } from "citty";
import { buildInfo } from "../version.ts";

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
  subCommands: { version },
});
