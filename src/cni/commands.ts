/**
 * The plugin's command handlers, each imported only when its command runs: VERSION (and a
 * malformed invocation) must not pay for the agent client, netlink or FFI.
 */
import type { CniHandlers } from "./plugin.ts";

export const commandHandlers: CniHandlers = {
  ADD: async (env, config) => (await import("./add.ts")).add(env, config),
  DEL: async (env, config) => (await import("./del.ts")).del(env, config),
  CHECK: async (env, config) => (await import("./check.ts")).check(env, config),
  STATUS: async (env, config) => (await import("./status.ts")).status(env, config),
  GC: async (env, config) => (await import("./gc.ts")).gc(env, config),
};

