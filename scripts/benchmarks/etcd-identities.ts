/**
 * Identity allocations per second against a real etcd (Debian's /usr/bin/etcd, started here on
 * a free 127.0.0.1 port with a temporary data dir) from 3 agents' backends at once: each agent
 * its own client and lease, allocating 200 label sets with 8 requests in flight, half the sets
 * shared by all three agents (they race for the same number) and half its own. Each round uses
 * new label sets; the median round's rate is reported.
 *
 * Baseline, same run and workload: the embedded (single node) backend, the three "agents"
 * calling one EmbeddedIdentityBackend (its file written on each new number).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IdentityBackend } from "../../src/identity/backend.ts";
import { LabelSet } from "../../src/identity/labels.ts";
import { EmbeddedIdentityBackend } from "../../src/kvstore/embedded-identities.ts";
import { EtcdClient } from "../../src/kvstore/etcd/client.ts";
import { EtcdIdentityBackend } from "../../src/kvstore/etcd/identities.ts";
import { EtcdSession } from "../../src/kvstore/etcd/session.ts";
import type { Logger } from "../../src/logging/index.ts";
import { EtcdServer, ETCD_BINARY } from "../../tests/helpers/etcd.ts";
import { median, type Benchmark } from "./harness.ts";

const AGENTS = 3;
const SETS_PER_AGENT = 200;
const IN_FLIGHT = 8;
const ROUNDS = 5;

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;

function workload(round: number, agent: number): LabelSet[] {
  return Array.from({ length: SETS_PER_AGENT }, (_, i) =>
    i % 2 === 0
      ? LabelSet.parse([`k8s:app=shared-${round}-${i}`, "k8s:io.kubernetes.pod.namespace=bench"])
      : LabelSet.parse([`k8s:app=own-${round}-${agent}-${i}`, "k8s:io.kubernetes.pod.namespace=bench"]),
  );
}

/** Allocations per second of the three agents' workloads run at once. */
async function rate(backends: IdentityBackend[], round: number): Promise<number> {
  const start = Bun.nanoseconds();
  await Promise.all(
    backends.map(async (backend, agent) => {
      const sets = workload(round, agent);
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < sets.length) await backend.allocate(sets[next++]!);
        }),
      );
    }),
  );
  return (AGENTS * SETS_PER_AGENT) / ((Bun.nanoseconds() - start) / 1e9);
}

const benchmark: Benchmark = {
  name: "etcd-identities",
  unavailable: () => (Bun.file(ETCD_BINARY).size > 0 ? undefined : `${ETCD_BINARY} is missing (Debian package etcd-server)`),
  async run() {
    const etcd = await EtcdServer.start();
    const stateDir = mkdtempSync(join(tmpdir(), "bench-embedded-"));
    const agents: { session: EtcdSession; backend: EtcdIdentityBackend; client: EtcdClient }[] = [];
    try {
      for (let i = 0; i < AGENTS; i++) {
        const client = await EtcdClient.connect({ endpoints: [etcd.url] });
        const session = new EtcdSession(client, 30_000, silent);
        await session.start(5000);
        const backend = new EtcdIdentityBackend({ session, node: `bench-${i}`, log: silent });
        await backend.start();
        agents.push({ session, backend, client });
      }
      const embedded = EmbeddedIdentityBackend.open(stateDir);
      const ours: number[] = [];
      const baseline: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        ours.push(await rate(agents.map((a) => a.backend), round));
        baseline.push(await rate([embedded, embedded, embedded], round));
      }
      return [
        {
          metric: `identity allocations/s, ${AGENTS} agents at once against etcd (half the label sets contended)`,
          ours: median(ours),
          baseline: median(baseline),
          unit: "allocs/s",
          method: `${ROUNDS} rounds x ${AGENTS}x${SETS_PER_AGENT} allocations, ${IN_FLIGHT} in flight per agent, median; baseline: embedded backend, same workload`,
          better: "higher",
        },
      ];
    } finally {
      for (const a of agents) {
        a.backend.close();
        await a.session.stop();
        a.client.close();
      }
      await etcd.destroy();
      rmSync(stateDir, { recursive: true, force: true });
    }
  },
};

export default benchmark;
