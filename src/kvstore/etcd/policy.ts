/**
 * The cluster's policy in etcd: one key holding the revision and every rule (the JSON form of
 * src/agent/policy/rule-json.ts). An import on any node writes the next revision with
 * compare-and-set against the version that node last applied, so two concurrent imports cannot
 * silently overwrite each other; every agent follows the key and applies each revision.
 */
import { AgentError } from "../../agent/errors.ts";
import type { RuleJson } from "../../agent/policy/rule-json.ts";
import type { Logger } from "../../logging/index.ts";
import { EtcdUnavailableError } from "./client.ts";
import { POLICY_KEY } from "./keys.ts";
import { PrefixWatch } from "./prefix-watch.ts";
import type { EtcdSession } from "./session.ts";

export interface ClusterPolicyJson {
  revision: number;
  rules: RuleJson[];
}

/** Applies a revision of the cluster's policy to this agent. */
export type ClusterPolicyHandler = (policy: ClusterPolicyJson) => Promise<void>;

export class ClusterPolicyStore {
  private readonly watch: PrefixWatch;
  /** The key's mod revision when this agent last saw it (0: no policy in etcd). */
  private seenModRevision = 0;

  constructor(
    private readonly session: EtcdSession,
    handler: ClusterPolicyHandler,
    private readonly log: Logger,
  ) {
    this.watch = new PrefixWatch(
      session.client,
      POLICY_KEY,
      {
        upsert: async (key, value, modRevision) => {
          if (key !== "") return;
          let policy: ClusterPolicyJson;
          try {
            policy = JSON.parse(value) as ClusterPolicyJson;
            if (!Number.isInteger(policy.revision) || !Array.isArray(policy.rules)) throw new Error("want {revision, rules}");
          } catch (error) {
            log.error(`ignoring the cluster policy in etcd: ${(error as Error).message}`);
            return;
          }
          this.seenModRevision = modRevision;
          await handler(policy);
        },
        delete: async () => {
          this.seenModRevision = 0;
        },
      },
      log,
    );
  }

  /**
   * Lists and follows the policy; answers whether etcd holds one. Called once the handler can
   * apply (a revision consumed earlier would never be applied).
   */
  async start(): Promise<boolean> {
    this.session.onReconnect(() => this.watch.resync());
    await this.watch.start();
    await this.watch.drained();
    return this.watch.entries.has("");
  }

  /**
   * Writes the next revision, only if nobody wrote since this agent last saw the key. Throws
   * AgentError "conflict" when someone did, "unavailable" when etcd is unreachable: nothing is
   * changed then, anywhere.
   */
  async publish(policy: ClusterPolicyJson): Promise<void> {
    let result;
    try {
      await this.watch.drained();
      result = await this.session.client.txn(
        [this.seenModRevision === 0 ? { key: POLICY_KEY, target: "create", result: "equal", revision: 0 } : { key: POLICY_KEY, target: "mod", result: "equal", revision: this.seenModRevision }],
        [{ put: { key: POLICY_KEY, value: JSON.stringify(policy) } }, { get: { key: POLICY_KEY } }],
      );
    } catch (error) {
      if (!(error instanceof EtcdUnavailableError)) throw error;
      this.session.reportFailure(error);
      throw new AgentError("unavailable", `the policy is kept in the kvstore (etcd), which is unreachable; nothing was changed: ${error.message}`);
    }
    if (!result.succeeded) {
      await this.watch.resync();
      throw new AgentError("conflict", "the cluster's policy changed on another node meanwhile; nothing was changed: apply the change again");
    }
    this.seenModRevision = result.ranges[0]?.[0]?.modRevision ?? this.seenModRevision;
    this.log.info(`cluster policy revision ${policy.revision} written to etcd`);
  }

  close(): void {
    this.watch.close();
  }
}
