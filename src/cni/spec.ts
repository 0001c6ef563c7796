/** Facts of the CNI specification (1.1 and the older result formats we still answer). */

export const CNI_VERSION_LATEST = "1.1.0";
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

export const CNI_COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/*
 * The checks on the plugin's inputs are loops, not regular expressions: the plugin is a fresh
 * process per call, and compiling each expression on first use costs it 0.1-0.4 ms.
 */

/** The spec's rule for container IDs and network names: letters, digits, '_', '.' and '-', starting with a letter or digit. */
export function isCniName(value: string): boolean {
  if (value === "") return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const alphanumeric = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!alphanumeric && (i === 0 || (c !== 95 && c !== 46 && c !== 45))) return false;
  }
  return true;
}

/** "MAJOR.MINOR.PATCH", digits only. */
export function isVersionTriple(value: string): boolean {
  const parts = value.split(".");
  return parts.length === 3 && parts.every((part) => part !== "" && [...part].every((c) => c >= "0" && c <= "9"));
}

/** Well-known error codes of the spec. */
export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
} as const;

/**
 * This plugin's own codes; the spec leaves 100 and up to plugins. Each message names the
 * attachment ("<container id>:<ifname>") and the object that failed.
 */
export const PluginErrorCode = {
  /** The agent could not allocate an IP (typically its pool is exhausted); msg carries the agent's message. */
  IpAllocationFailed: 100,
  /** The agent answered a request with an error other than the ones mapped elsewhere. */
  AgentRequestFailed: 101,
  /** A kernel operation on the veth pair or inside the pod's namespace failed (create, rename, address, route, up). */
  InterfaceSetupFailed: 102,
  /** ADD of an attachment that already exists: the runtime must DEL it first; the existing one is left intact. */
  AttachmentExists: 103,
  /** CHECK found the attachment missing, or different from what ADD set up and prevResult records. */
  AttachmentCheckFailed: 104,
} as const;

/** An error the plugin reports to the runtime as the spec's error JSON. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.name = "CniError";
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    const body: Record<string, unknown> = { cniVersion, code: this.code, msg: this.message };
    if (this.details) body.details = this.details;
    return body;
  }
}

/** Commands newer than the first supported version: a config of an older version may not use them. */
const MINIMUM_VERSION: Partial<Record<CniCommand, CniVersion>> = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" };

/** Refuses a command the config's cniVersion does not have (as libcni's skel does: code 1). */
export function assertCommandInVersion(command: CniCommand, version: CniVersion): void {
  const minimum = MINIMUM_VERSION[command];
  if (minimum && compareVersions(version, minimum) < 0) {
    throw new CniError(CniErrorCode.IncompatibleVersion, `config version "${version}" does not allow ${command} (needs ${minimum} or later)`);
  }
}

export function isSupportedVersion(version: string): version is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** Compares dotted versions numerically; NaN parts sort first. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
