/** `cilium operator` (argv[0] `cilium-operator`): cluster-wide chores, one active replica at a time. */
import { defineCommand } from "citty";

const args = {
  kvstore: { type: "string", description: "The cluster's kvstore: etcd" },
  "kvstore-opt": { type: "string", description: "kvstore options: etcd.address=URL[,URL...] or etcd.config=FILE" },
  "cluster-pool-ipv4-cidr": { type: "string", description: "Cluster CIDR the nodes' pod CIDRs are cut from (cluster-pool IPAM)" },
  "cluster-pool-ipv4-mask-size": { type: "string", description: "Prefix length of each node's pod CIDR (default 24)" },
  "identity-gc-interval": { type: "string", description: "How often unused identities are removed (default 15m)" },
  "nodes-gc-interval": { type: "string", description: "How long a node must be gone before its pod CIDR is released (default 5m)" },
  "leader-election-lease-duration": { type: "string", description: "Lease of the leader key: a dead leader is replaced after this (default 10s)" },
  "leader-election-renew-deadline": { type: "string", description: "A leader that cannot renew for this long steps down (default 7s)" },
  "leader-election-retry-period": { type: "string", description: "How often replicas renew and campaign (default 2s)" },
  id: { type: "string", description: "This replica's name in the election (default hostname-pid)" },
} as const;

export default defineCommand({
  meta: { name: "operator", description: "Run the operator: cluster-pool IPAM, identity and node garbage collection" },
  args,
  async run({ args: parsed }) {
    const [{ hostname }, { parseOperatorConfig, OperatorConfigError }, { logger }] = await Promise.all([
      import("node:os"),
      import("../operator/config.ts"),
      import("../logging/index.ts"),
    ]);
    const flags: Record<string, string | undefined> = {};
    for (const name of Object.keys(args)) flags[name] = parsed[name] as string | undefined;
    let config;
    try {
      config = parseOperatorConfig(flags, hostname());
    } catch (error) {
      if (!(error instanceof OperatorConfigError)) throw error;
      for (const problem of error.problems) console.error(`invalid configuration: ${problem}`);
      process.exitCode = 2;
      return;
    }
    const log = logger("operator");
    const { startOperator } = await import("../operator/run.ts");
    const operator = await startOperator(config, log);
    let stopping = false;
    const stop = () => {
      if (stopping) process.exit(1);
      stopping = true;
      void operator.stop().then(() => process.exit(0));
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  },
});
