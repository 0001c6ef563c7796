/** The network configuration the runtime writes on stdin, decoded and validated. */
import { CniError, CniErrorCode, compareVersions, isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from "./spec.ts";

export const DEFAULT_SOCKET_PATH = "/var/run/cilium/cilium.sock";

export interface NetworkConfig {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** The agent's API socket ("socket-path"), default /var/run/cilium/cilium.sock. */
  socketPath: string;
  mtu: number | undefined;
  prevResult: Record<string, unknown> | undefined;
  validAttachments: { containerID: string; ifname: string }[] | undefined;
  raw: Record<string, unknown>;
}

const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

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
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw invalid("cniVersion", `${JSON.stringify(version)} is not a version`);
  if (!isSupportedVersion(version)) {
    const newer = compareVersions(version, SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]!) > 0;
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `incompatible CNI version: config is ${JSON.stringify(version)}, plugin supports ${SUPPORTED_VERSIONS.map((v) => JSON.stringify(v)).join(" ")}`,
      newer ? "the config is newer than this plugin" : "the config is older than this plugin supports",
    );
  }
  const name = raw.name;
  if (typeof name !== "string" || !NETWORK_NAME.test(name)) {
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
    prevResult: prevResult as Record<string, unknown> | undefined,
    validAttachments,
    raw,
  };
}
