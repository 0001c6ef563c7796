/**
 * Where etcd is, from upstream's agent options: `--kvstore etcd` with `--kvstore-opt
 * etcd.address=URL[,URL...]` or `--kvstore-opt etcd.config=FILE`, the file in upstream's etcd
 * config form (YAML: endpoints, trusted-ca-file, cert-file, key-file). Parsing is pure; reading
 * the config file and its certificates happens in loadEtcdConfigFile.
 */
import { readFileSync } from "node:fs";

export const KVSTORE_TYPES = ["etcd"] as const;
export type KvstoreType = (typeof KVSTORE_TYPES)[number];

/** The kvstore-opt keys we understand, as upstream names them. */
export const ETCD_OPTION_KEYS = ["etcd.address", "etcd.config"] as const;

export interface EtcdTlsFiles {
  trustedCaFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface EtcdOptions {
  /** "http://10.99.0.1:2379", ... */
  endpoints: string[];
  tls?: EtcdTlsFiles;
  /** The config file the endpoints came from, if any. */
  configFile?: string;
}

/**
 * `--kvstore-opt` text: comma-separated key=value; a piece without "=" continues the previous
 * value, so `etcd.address=http://a:2379,http://b:2379` keeps both URLs. Answers the map or a problem.
 */
export function parseKvstoreOpt(text: string): { value: Record<string, string> } | { problem: string } {
  const values: Record<string, string> = {};
  let last: string | undefined;
  for (const piece of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = piece.indexOf("=");
    if (eq < 0) {
      if (last === undefined) return { problem: `"${piece}" is not key=value` };
      values[last] += `,${piece}`;
      continue;
    }
    const key = piece.slice(0, eq).trim();
    if (!(ETCD_OPTION_KEYS as readonly string[]).includes(key)) {
      return { problem: `unknown option "${key}" (known: ${ETCD_OPTION_KEYS.join(", ")})` };
    }
    values[key] = piece.slice(eq + 1).trim();
    last = key;
  }
  return { value: values };
}

/** The endpoints of etcd.address, each an http(s) URL with host and port. */
export function parseEtcdAddresses(text: string): { value: string[] } | { problem: string } {
  const endpoints = text.split(",").map((a) => a.trim()).filter(Boolean);
  if (endpoints.length === 0) return { problem: "etcd.address: give at least one URL, e.g. http://127.0.0.1:2379" };
  for (const endpoint of endpoints) {
    const problem = endpointProblem(endpoint);
    if (problem) return { problem: `etcd.address: ${problem}` };
  }
  return { value: endpoints };
}

function endpointProblem(endpoint: string): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `${JSON.stringify(endpoint)} is not a URL (want http://HOST:PORT or https://HOST:PORT)`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `${JSON.stringify(endpoint)}: the scheme must be http or https`;
  if (!url.port) return `${JSON.stringify(endpoint)}: give the port (etcd's client port is usually 2379)`;
  if (url.pathname !== "/" && url.pathname !== "") return `${JSON.stringify(endpoint)}: no path allowed`;
  return undefined;
}

export class EtcdConfigError extends Error {
  constructor(path: string, problem: string) {
    super(`etcd.config ${path}: ${problem}`);
    this.name = "EtcdConfigError";
  }
}

/** Parses upstream's etcd config file text (YAML). Throws EtcdConfigError. */
export function parseEtcdConfigFile(path: string, text: string): EtcdOptions {
  let doc: unknown;
  try {
    // Loaded here, not at the top: config.ts (every CLI command's import graph) imports this file.
    const { parse } = require("yaml") as typeof import("yaml");
    doc = parse(text);
  } catch (error) {
    throw new EtcdConfigError(path, `not YAML: ${(error as Error).message}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new EtcdConfigError(path, "must be a mapping with endpoints (and optionally trusted-ca-file, cert-file, key-file)");
  const record = doc as Record<string, unknown>;
  const known = ["endpoints", "trusted-ca-file", "cert-file", "key-file"];
  const unknown = Object.keys(record).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new EtcdConfigError(path, `unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (known: ${known.join(", ")})`);
  const endpoints = record.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0 || endpoints.some((e) => typeof e !== "string")) {
    throw new EtcdConfigError(path, "endpoints must be a non-empty list of URLs");
  }
  for (const endpoint of endpoints as string[]) {
    const problem = endpointProblem(endpoint);
    if (problem) throw new EtcdConfigError(path, `endpoints: ${problem}`);
  }
  const tls: EtcdTlsFiles = {};
  for (const [field, key] of [["trusted-ca-file", "trustedCaFile"], ["cert-file", "certFile"], ["key-file", "keyFile"]] as const) {
    const value = record[field];
    if (value === undefined) continue;
    if (typeof value !== "string" || value === "") throw new EtcdConfigError(path, `${field} must be a file path`);
    tls[key] = value;
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new EtcdConfigError(path, "cert-file and key-file go together");
  const usesTls = (endpoints as string[]).some((e) => e.startsWith("https:"));
  if (Object.keys(tls).length > 0 && !usesTls) throw new EtcdConfigError(path, "certificate files given but no endpoint is https://");
  return { endpoints: endpoints as string[], ...(Object.keys(tls).length > 0 ? { tls } : {}), configFile: path };
}

export function loadEtcdConfigFile(path: string): EtcdOptions {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new EtcdConfigError(path, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseEtcdConfigFile(path, text);
}

/** etcd's options from the kvstore-opt map: exactly one of etcd.address and etcd.config. */
export function etcdOptionsFrom(opts: Record<string, string>, readConfig: (path: string) => EtcdOptions = loadEtcdConfigFile): { value: EtcdOptions } | { problem: string } {
  const address = opts["etcd.address"];
  const config = opts["etcd.config"];
  if (address !== undefined && config !== undefined) return { problem: "give etcd.address or etcd.config, not both" };
  if (address !== undefined) {
    const parsed = parseEtcdAddresses(address);
    return "problem" in parsed ? parsed : { value: { endpoints: parsed.value } };
  }
  if (config !== undefined) {
    if (!config.startsWith("/")) return { problem: `etcd.config ${JSON.stringify(config)}: must be an absolute path` };
    try {
      return { value: readConfig(config) };
    } catch (error) {
      return { problem: (error as Error).message };
    }
  }
  return { problem: "--kvstore etcd needs --kvstore-opt etcd.address=URL[,URL...] or etcd.config=FILE" };
}
