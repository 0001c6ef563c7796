/** Build identity: the version comes from package.json; the commit is stamped in by scripts/build.ts. */
import packageJson from "../package.json" with { type: "json" };

declare const __GIT_COMMIT__: string | undefined;

export const VERSION: string = packageJson.version;
export const GIT_COMMIT: string = typeof __GIT_COMMIT__ === "string" ? __GIT_COMMIT__ : "development";

export interface BuildInfo {
  version: string;
  commit: string;
  bun: string;
  kernel: string;
}

export async function buildInfo(): Promise<BuildInfo> {
  const { release } = await import("node:os");
  return { version: VERSION, commit: GIT_COMMIT, bun: Bun.version, kernel: release() };
}
