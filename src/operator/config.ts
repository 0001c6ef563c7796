/** `cilium operator` options, with upstream's names, parsed and checked in one place. */
import { parseDurationMs } from "../duration.ts";
import { etcdOptionsFrom, KVSTORE_TYPES, parseKvstoreOpt, type EtcdOptions } from "../kvstore/etcd/options.ts";
import { ClusterPool } from "./cluster-pool.ts";

export interface OperatorConfig {
  id: string;
  etcd: EtcdOptions;
  /** Absent: no cluster-pool IPAM (every agent brings its --ipv4-range). */
  pool?: ClusterPool;
  identityGcIntervalMs: number;
  nodesGcIntervalMs: number;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export type OperatorFlags = Record<string, string | undefined>;

export class OperatorConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "OperatorConfigError";
  }
}

export function parseOperatorConfig(flags: OperatorFlags, hostname: string): OperatorConfig {
  const problems: string[] = [];
  const duration = (name: string, fallback: string): number => {
    const text = flags[name] ?? fallback;
    const ms = parseDurationMs(text);
    if (ms === undefined || ms <= 0) problems.push(`--${name} ${JSON.stringify(text)}: expected a duration such as 15s, 500ms or 5m`);
    return ms ?? 0;
  };

  let etcd: EtcdOptions | undefined;
  const kvstore = flags.kvstore ?? "";
  if (!(KVSTORE_TYPES as readonly string[]).includes(kvstore)) {
    problems.push(`--kvstore ${JSON.stringify(kvstore)}: the operator needs the cluster's kvstore (supported: ${KVSTORE_TYPES.join(", ")})`);
  } else {
    const opts = parseKvstoreOpt(flags["kvstore-opt"] ?? "");
    const parsed = "problem" in opts ? opts : etcdOptionsFrom(opts.value);
    if ("problem" in parsed) problems.push(`--kvstore-opt: ${parsed.problem}`);
    else etcd = parsed.value;
  }

  let pool: ClusterPool | undefined;
  const cidr = flags["cluster-pool-ipv4-cidr"];
  if (cidr) {
    const maskText = flags["cluster-pool-ipv4-mask-size"] ?? "24";
    try {
      if (!/^\d+$/.test(maskText)) throw new Error(`--cluster-pool-ipv4-mask-size ${JSON.stringify(maskText)}: expected a number`);
      pool = new ClusterPool(cidr, Number(maskText));
    } catch (error) {
      problems.push(`--cluster-pool-ipv4-cidr ${cidr}: ${(error as Error).message}`);
    }
  }

  const config = {
    id: flags.id || `${hostname}-${process.pid}`,
    identityGcIntervalMs: duration("identity-gc-interval", "15m"),
    nodesGcIntervalMs: duration("nodes-gc-interval", "5m"),
    // 10s rather than upstream's 15s: a standby takes over within lease + retry period (< 15 s).
    leaseDurationMs: duration("leader-election-lease-duration", "10s"),
    renewDeadlineMs: duration("leader-election-renew-deadline", "7s"),
    retryPeriodMs: duration("leader-election-retry-period", "2s"),
  };
  if (problems.length) throw new OperatorConfigError(problems);
  return { ...config, etcd: etcd!, ...(pool ? { pool } : {}) };
}
