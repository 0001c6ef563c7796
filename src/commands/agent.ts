import { defineCommand, type ArgsDef } from "citty";
import { AGENT_OPTIONS, CONFIG_DIR_OPTION } from "../agent/config.ts";

/** Flags without defaults: an absent flag must not hide the config dir's or environment's value. */
const args: ArgsDef = {
  [CONFIG_DIR_OPTION]: { type: "string", description: "Directory of option files (file name = option, content = value), e.g. a mounted ConfigMap" },
};
for (const [name, option] of Object.entries(AGENT_OPTIONS)) {
  args[name] =
    option.type === "boolean"
      ? { type: "boolean", description: option.description, negativeDescription: `Same as --${name}=false` }
      : { type: "string", description: option.description };
}

export default defineCommand({
  meta: { name: "agent", description: "Run the cilium agent: API, IPAM, endpoints and datapath for this node" },
  args,
  async run({ args: parsed }) {
    const flags: Record<string, string | boolean | undefined> = {};
    for (const name of Object.keys(args)) flags[name] = parsed[name] as string | boolean | undefined;
    const { runAgent } = await import("../agent/run.ts");
    process.exitCode = await runAgent(flags, async () => {
      const { LinuxDatapath } = await import("../agent/datapath.ts");
      return new LinuxDatapath();
    });
  },
});
