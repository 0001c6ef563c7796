/** The I/O behind the agent's configuration: the config dir, the group database, the hostname. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type AgentConfig, CONFIG_DIR_OPTION, ConfigError, envName, resolveAgentConfig, unknownConfigDirOptions, type HostFacts } from "./config.ts";

export interface LoadedConfig {
  config: AgentConfig;
  /** Files in the config dir that name no option: worth a warning, not an error. */
  ignoredConfigDirEntries: string[];
}

/** The configuration from explicit flags, the config dir they (or the environment) name, and the environment. */
export function loadAgentConfig(flags: Record<string, string | boolean | undefined>, env: Record<string, string | undefined>): LoadedConfig {
  const dirFlag = flags[CONFIG_DIR_OPTION] ?? env[envName(CONFIG_DIR_OPTION)];
  const configDir = typeof dirFlag === "string" && dirFlag !== "" ? { path: dirFlag, values: readConfigDir(dirFlag) } : undefined;
  const config = resolveAgentConfig({ flags, configDir, env }, hostFacts());
  return { config, ignoredConfigDirEntries: configDir ? unknownConfigDirOptions(configDir.values) : [] };
}

/**
 * Option name -> content of each regular file in the directory. Dot entries are skipped: a
 * mounted ConfigMap keeps its real files in "..data" and links each key to them.
 */
export function readConfigDir(dir: string): Record<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new ConfigError([`--${CONFIG_DIR_OPTION} ${JSON.stringify(dir)}: cannot read the directory: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  const values: Record<string, string> = {};
  for (const name of names.sort()) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    try {
      if (!statSync(path).isFile()) continue;
      values[name] = readFileSync(path, "utf8");
    } catch (error) {
      throw new ConfigError([`--${CONFIG_DIR_OPTION} ${JSON.stringify(dir)}: cannot read ${name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
    }
  }
  return values;
}

export function hostFacts(): HostFacts {
  const groups = readGroups("/etc/group");
  return {
    hostname: hostname(),
    groupId: (name) => groups.find((group) => group.name === name)?.gid,
    groupName: (gid) => groups.find((group) => group.gid === gid)?.name,
    primaryGid: process.getgid?.() ?? 0,
  };
}

/** name:password:gid:members lines of the group database. */
function readGroups(path: string): { name: string; gid: number }[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").flatMap((line) => {
    const [name, , gid] = line.split(":");
    return name && gid && /^\d+$/.test(gid) ? [{ name, gid: Number(gid) }] : [];
  });
}
