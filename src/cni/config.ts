/** The network configuration the runtime writes on stdin, decoded and validated. */
import { CniError, CniErrorCode, compareVersions, isCniName, isSupportedVersion, isVersionTriple, SUPPORTED_VERSIONS, type CniVersion } from "./spec.ts";
import { parsePrevResult, type CniDns, type CniResult } from "./result.ts";

export const DEFAULT_SOCKET_PATH = "/var/run/cilium/cilium.sock";

export interface NetworkConfig {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** The agent's API socket ("socket-path"), default /var/run/cilium/cilium.sock. */
  socketPath: string;
  /** Overrides the MTU the agent hands out with each IP. */
  mtu: number | undefined;
  /** DNS settings to report in ADD's result ("dns", as the spec's network config has it). */
  dns: CniDns | undefined;
  /** Endpoint labels from the config's `args.cni.labels` ([{ key, value }], a CNI convention), as "key=value". */
  labels: string[];
  prevResult: CniResult | undefined;
  validAttachments: { containerID: string; ifname: string }[] | undefined;
  raw: Record<string, unknown>;
}

/** Decodes stdin; a body that is not a JSON object is a decoding failure (code 6). */
export function decodeConfig(stdin: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(CniErrorCode.DecodingFailure, `cannot decode network config: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new CniError(CniErrorCode.DecodingFailure, "cannot decode network config: expected a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function invalid(field: string, problem: string): CniError {
  return new CniError(CniErrorCode.InvalidNetworkConfig, `invalid network config: "${field}" ${problem}`);
}

export function parseNetworkConfig(raw: Record<string, unknown>): NetworkConfig {
  const version = raw.cniVersion;
  if (typeof version !== "string" || version === "") throw invalid("cniVersion", "is required and must be a string");
  if (!isVersionTriple(version)) throw invalid("cniVersion", `${JSON.stringify(version)} is not a version`);
  if (!isSupportedVersion(version)) {
    const newer = compareVersions(version, SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]!) > 0;
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `incompatible CNI version: config is ${JSON.stringify(version)}, plugin supports ${SUPPORTED_VERSIONS.map((v) => JSON.stringify(v)).join(" ")}`,
      newer ? "the config is newer than this plugin" : "the config is older than this plugin supports",
    );
  }
  const name = raw.name;
  if (typeof name !== "string" || !isCniName(name)) {
    throw invalid("name", "is required: letters, digits, '_', '.', '-', starting with a letter or digit");
  }
  const type = raw.type;
  if (typeof type !== "string" || type === "") throw invalid("type", "is required and must be a string");

  const socketPath = raw["socket-path"] ?? DEFAULT_SOCKET_PATH;
  if (typeof socketPath !== "string" || !socketPath.startsWith("/")) throw invalid("socket-path", "must be an absolute path");

  const mtu = raw.mtu;
  if (mtu !== undefined && (typeof mtu !== "number" || !Number.isInteger(mtu) || mtu < 576 || mtu > 65535)) {
    throw invalid("mtu", "must be an integer between 576 and 65535");
  }

  const prevResult = raw.prevResult;
  if (prevResult !== undefined && (prevResult === null || typeof prevResult !== "object" || Array.isArray(prevResult))) {
    throw invalid("prevResult", "must be an object");
  }

  const dns = raw.dns;
  if (dns !== undefined) {
    if (dns === null || typeof dns !== "object" || Array.isArray(dns)) throw invalid("dns", "must be an object");
    for (const [key, value] of Object.entries(dns)) {
      const ok = key === "domain" ? typeof value === "string" : Array.isArray(value) && value.every((v) => typeof v === "string");
      if (!ok) throw invalid(`dns.${key}`, key === "domain" ? "must be a string" : "must be a list of strings");
    }
  }

  const attachments = raw["cni.dev/valid-attachments"];
  let validAttachments: NetworkConfig["validAttachments"];
  if (attachments !== undefined) {
    if (!Array.isArray(attachments)) throw invalid("cni.dev/valid-attachments", "must be a list");
    validAttachments = attachments.map((entry, i) => {
      const a = entry as Record<string, unknown> | null;
      if (!a || typeof a.containerID !== "string" || typeof a.ifname !== "string") {
        throw invalid(`cni.dev/valid-attachments[${i}]`, "must have string containerID and ifname");
      }
      return { containerID: a.containerID, ifname: a.ifname };
    });
  }

  return {
    cniVersion: version,
    name,
    type,
    socketPath,
    mtu: mtu as number | undefined,
    dns: dns as CniDns | undefined,
    labels: conventionLabels(raw.args),
    prevResult: prevResult === undefined ? undefined : parsePrevResult(prevResult as Record<string, unknown>),
    validAttachments,
    raw,
  };
}

/** `"args": { "cni": { "labels": [{ "key": "app", "value": "web" }] } }` (CNI conventions). */
function conventionLabels(args: unknown): string[] {
  if (args === undefined) return [];
  if (args === null || typeof args !== "object" || Array.isArray(args)) throw invalid("args", "must be an object");
  const cni = (args as Record<string, unknown>).cni;
  if (cni === undefined) return [];
  if (cni === null || typeof cni !== "object" || Array.isArray(cni)) throw invalid("args.cni", "must be an object");
  const labels = (cni as Record<string, unknown>).labels;
  if (labels === undefined) return [];
  if (!Array.isArray(labels)) throw invalid("args.cni.labels", "must be a list");
  return labels.map((entry, i) => {
    const label = entry as Record<string, unknown> | null;
    if (!label || typeof label.key !== "string" || label.key === "" || typeof label.value !== "string") {
      throw invalid(`args.cni.labels[${i}]`, "must have a non-empty string key and a string value");
    }
    return `${label.key}=${label.value}`;
  });
}
