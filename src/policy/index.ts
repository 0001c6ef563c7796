/**
 * Network policy, pure: the rule model, parsing and validation (CiliumNetworkPolicy, bare rules,
 * Kubernetes NetworkPolicy), selectors and the selector cache, the repository, resolution to
 * policy map entries, map diffs and `policy trace`. No I/O: the agent feeds it identities and
 * rules and writes the resulting entries to the datapath.
 */
export * from "./errors.ts";
export * from "./rule.ts";
export * from "./selector.ts";
export * from "./selector-cache.ts";
export * from "./parse.ts";
export * from "./namespace.ts";
export * from "./ports.ts";
export * from "./peers.ts";
export * from "./compile.ts";
export * from "./repository.ts";
export * from "./map-state.ts";
export * from "./resolve.ts";
export * from "./diff.ts";
export * from "./trace.ts";
