/**
 * The CNI result: what ADD answers, and what the runtime hands back as prevResult. One internal
 * shape, written out per cniVersion: 0.3.x/0.4.0 tag every IP with "version"; 1.0.0 drops it;
 * 1.1.0 adds interface MTU (and other fields we carry through but never set ourselves).
 */
import { CniError, CniErrorCode, compareVersions, type CniVersion } from "./spec.ts";

export interface CniInterface {
  name: string;
  mac?: string;
  /** 1.1.0 and later. */
  mtu?: number;
  /** The netns path; present for interfaces inside the container, absent for host interfaces. */
  sandbox?: string;
  /** 1.1.0 and later. */
  socketPath?: string;
  /** 1.1.0 and later. */
  pciID?: string;
}

export interface CniIpConfig {
  /** CIDR notation: address and prefix length. */
  address: string;
  gateway?: string;
  /** Index into the result's interfaces. */
  interface?: number;
  /** 0.3.x and 0.4.0 only. */
  version?: "4" | "6";
}

export interface CniRoute {
  dst: string;
  gw?: string;
  /** mtu, advmss, priority, table and scope are 1.1.0 and later. */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIpConfig[];
  routes: CniRoute[];
  dns: CniDns;
}

/** What ADD set up for one attachment, before it is written in a result format. */
export interface AttachmentNetwork {
  hostInterface: { name: string; mac: string };
  podInterface: { name: string; mac: string; sandbox: string };
  mtu: number;
  /** The pod's address (without prefix length) and its gateway. */
  ip: string;
  gateway: string;
}

const INTERFACE_FIELDS_SINCE_1_1 = ["mtu", "socketPath", "pciID"] as const;
const ROUTE_FIELDS_SINCE_1_1 = ["mtu", "advmss", "priority", "table", "scope"] as const;

/**
 * ADD's result. With a prevResult (chaining), its interfaces, ips, routes and dns come first,
 * unchanged, and ours are appended, so earlier plugins' indexes stay valid and ours point past
 * them. DNS is the union of prevResult's and the network config's.
 */
export function attachmentResult(
  network: AttachmentNetwork,
  version: CniVersion,
  options: { previous?: CniResult; dns?: CniDns } = {},
): Record<string, unknown> {
  const previous = options.previous;
  const interfaces = previous?.interfaces ?? [];
  const podIndex = interfaces.length + 1;
  return formatResult(
    {
      cniVersion: version,
      interfaces: [
        ...interfaces,
        { name: network.hostInterface.name, mac: network.hostInterface.mac, mtu: network.mtu },
        { name: network.podInterface.name, mac: network.podInterface.mac, mtu: network.mtu, sandbox: network.podInterface.sandbox },
      ],
      ips: [...(previous?.ips ?? []), { address: `${network.ip}/32`, gateway: network.gateway, interface: podIndex }],
      routes: [...(previous?.routes ?? []), { dst: "0.0.0.0/0", gw: network.gateway }],
      dns: mergeDns(previous?.dns ?? {}, options.dns ?? {}),
    },
    version,
  );
}

/** Writes a result in the format of `version`, dropping or adding the fields that differ. */
export function formatResult(result: CniResult, version: CniVersion): Record<string, unknown> {
  const before1_0 = compareVersions(version, "1.0.0") < 0;
  const before1_1 = compareVersions(version, "1.1.0") < 0;
  return {
    cniVersion: version,
    interfaces: result.interfaces.map((entry) => (before1_1 ? without(entry, INTERFACE_FIELDS_SINCE_1_1) : { ...entry })),
    ips: result.ips.map((ip) => {
      const { version: _, ...rest } = ip;
      return before1_0 ? { version: ipVersion(ip.address), ...rest } : rest;
    }),
    routes: result.routes.map((route) => (before1_1 ? without(route, ROUTE_FIELDS_SINCE_1_1) : { ...route })),
    dns: { ...result.dns },
  };
}

function without<T extends object>(entry: T, fields: readonly string[]): Partial<T> {
  const copy = { ...entry } as Record<string, unknown>;
  for (const field of fields) delete copy[field];
  return copy as Partial<T>;
}

function ipVersion(cidr: string): "4" | "6" {
  return cidr.includes(":") ? "6" : "4";
}

function union(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (!a && !b) return undefined;
  return [...new Set([...(a ?? []), ...(b ?? [])])];
}

export function mergeDns(first: CniDns, second: CniDns): CniDns {
  const dns: CniDns = {};
  const nameservers = union(first.nameservers, second.nameservers);
  if (nameservers) dns.nameservers = nameservers;
  const domain = first.domain ?? second.domain;
  if (domain) dns.domain = domain;
  const search = union(first.search, second.search);
  if (search) dns.search = search;
  const options = union(first.options, second.options);
  if (options) dns.options = options;
  return dns;
}

/**
 * Reads prevResult (in the config's format) into the internal shape. Entries keep any fields
 * we do not know, so chaining passes them through; the ones we rely on are checked.
 */
export function parsePrevResult(raw: Record<string, unknown>): CniResult {
  const list = (field: string): Record<string, unknown>[] => {
    const value = raw[field];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw invalidPrevResult(field, "must be a list");
    return value.map((entry, i) => {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw invalidPrevResult(`${field}[${i}]`, "must be an object");
      return entry as Record<string, unknown>;
    });
  };
  const requireString = (entries: Record<string, unknown>[], field: string, key: string) =>
    entries.forEach((entry, i) => {
      if (typeof entry[key] !== "string") throw invalidPrevResult(`${field}[${i}].${key}`, "must be a string");
    });

  const interfaces = list("interfaces");
  requireString(interfaces, "interfaces", "name");
  const ips = list("ips");
  requireString(ips, "ips", "address");
  ips.forEach((ip, i) => {
    if (ip.interface !== undefined && (!Number.isInteger(ip.interface) || (ip.interface as number) < 0)) {
      throw invalidPrevResult(`ips[${i}].interface`, "must be an interface index");
    }
  });
  const routes = list("routes");
  requireString(routes, "routes", "dst");
  const dns = raw.dns ?? {};
  if (dns === null || typeof dns !== "object" || Array.isArray(dns)) throw invalidPrevResult("dns", "must be an object");
  return {
    cniVersion: typeof raw.cniVersion === "string" ? raw.cniVersion : "",
    interfaces: interfaces as unknown as CniInterface[],
    ips: ips as unknown as CniIpConfig[],
    routes: routes as unknown as CniRoute[],
    dns: dns as CniDns,
  };
}

function invalidPrevResult(field: string, problem: string): CniError {
  return new CniError(CniErrorCode.InvalidNetworkConfig, `invalid network config: "prevResult.${field}" ${problem}`);
}
