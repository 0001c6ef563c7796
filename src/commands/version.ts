import { defineCommand } from "citty";
import { buildInfo } from "../version.ts";

export default defineCommand({
  meta: { name: "version", description: "Print the version, git commit, Bun version and kernel version" },
  args: {
    output: { type: "string", alias: "o", description: "Output format: text or json", default: "text" },
  },
  async run({ args }) {
    const info = await buildInfo();
    if (args.output === "json") {
      console.log(JSON.stringify(info));
      return;
    }
    console.log(`Version:     ${info.version}`);
    console.log(`Git commit:  ${info.commit}`);
    console.log(`Bun:         ${info.bun}`);
    console.log(`Kernel:      ${info.kernel}`);
  },
});
