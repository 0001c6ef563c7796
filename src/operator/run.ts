/**
 * The operator: cluster-wide chores that need exactly one actor at a time, done only by the
 * elected leader. Every replica connects to etcd and campaigns; the leader runs cluster-pool
 * IPAM with node GC (each pass on a short timer) and identity GC (on its own interval).
 */
import type { Logger } from "../logging/index.ts";
import { EtcdClient } from "../kvstore/etcd/client.ts";
import { collectUnusedIdentities } from "../kvstore/etcd/identity-gc.ts";
import { formatCidr } from "../net/ipv4.ts";
import type { OperatorConfig } from "./config.ts";
import { LeaderElection } from "./leader.ts";
import { PodCidrAllocator } from "./pod-cidr-allocator.ts";

export interface Operator {
  readonly election: LeaderElection;
  stop(): Promise<void>;
}

/** How often the leader looks for nodes without a CIDR (new agents wait on it). */
const IPAM_PASS_MS = 500;

/** A timer running `task` every `intervalMs`, never two at once; errors go to the log. */
function every(intervalMs: number, task: () => Promise<void>, log: Pick<Logger, "warn">, what: string): () => Promise<void> {
  let stopped = false;
  let running: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = () => {
    running = task()
      .catch((error) => log.warn(`${what} failed: ${(error as Error).message}`))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}

export async function startOperator(config: OperatorConfig, log: Logger): Promise<Operator> {
  const client = await EtcdClient.connect(config.etcd);
  const allocator = config.pool ? new PodCidrAllocator({ client, pool: config.pool, nodeGcIntervalMs: config.nodesGcIntervalMs, log }) : undefined;
  let chores: (() => Promise<void>)[] = [];
  const stopChores = async () => {
    const running = chores;
    chores = [];
    await Promise.all(running.map((stop) => stop()));
  };
  const election = new LeaderElection({
    client,
    id: config.id,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    retryPeriodMs: config.retryPeriodMs,
    log,
    onStartedLeading: () => {
      if (allocator) chores.push(every(IPAM_PASS_MS, async () => void (await allocator.pass()), log, "pod CIDR allocation"));
      chores.push(
        every(
          config.identityGcIntervalMs,
          async () => {
            const gc = await collectUnusedIdentities(client);
            if (gc.deleted.length) log.info(`identity GC: deleted ${gc.deleted.join(", ")}; ${gc.inUse} in use`);
          },
          log,
          "identity garbage collection",
        ),
      );
    },
    onStoppedLeading: () => void stopChores(),
  });
  election.start();
  const pool = config.pool ? `, cluster pool ${formatCidr(config.pool.cidr)} in /${config.pool.maskSize}s` : ", no cluster-pool IPAM";
  log.info(`operator ${config.id} started (etcd ${config.etcd.endpoints.join(", ")}${pool})`);
  return {
    election,
    stop: async () => {
      await election.stop();
      await stopChores();
      client.close();
    },
  };
}
