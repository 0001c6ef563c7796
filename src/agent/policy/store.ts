/**
 * The policy in force, persisted: <state-dir>/policy.json holds the revision and every rule in
 * its JSON form (rule-json.ts), written atomically BEFORE the repository changes, so a restarted
 * agent enforces exactly what it last accepted. A file that cannot be read back stops the agent:
 * starting without the policy would open every endpoint.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { formatIssue, PolicyValidationError } from "../../policy/errors.ts";
import { parsePolicyDocuments } from "../../policy/parse.ts";
import type { Rule } from "../../policy/rule.ts";
import { writeFileAtomic } from "../state/atomic-file.ts";
import { ruleJsonText, ruleToJson, type RuleJson } from "./rule-json.ts";

const FORMAT_VERSION = 1;
export const POLICY_FILE = "policy.json";

export interface PersistedPolicy {
  revision: number;
  rules: Rule[];
}

export class PolicyStateError extends Error {
  constructor(path: string, problem: string) {
    super(`cannot restore the policy from ${path}: ${problem}; the agent will not start without the policy it enforced (fix or remove the file)`);
    this.name = "PolicyStateError";
  }
}

/** Rules from their persisted JSON form; throws PolicyValidationError. */
export function rulesFromJson(list: readonly RuleJson[]): Rule[] {
  return list.length === 0 ? [] : parsePolicyDocuments([list]);
}

/**
 * The JSON form of rules, checked to import back to the same rules (a rule that would not
 * survive a restart unchanged must not be accepted: the restarted agent would enforce another
 * policy).
 */
export function rulesToJson(rules: readonly Rule[]): RuleJson[] {
  const fresh = [...new Set(rules.filter((r) => !checkedJson.has(r)))];
  if (fresh.length > 0) {
    const json = fresh.map(ruleToJson);
    const back = rulesFromJson(json);
    for (let i = 0; i < fresh.length; i++) {
      if (ruleJsonText(back[i]!) !== ruleJsonText(fresh[i]!)) {
        throw new Error(`internal error: rule ${rules.indexOf(fresh[i]!)} does not survive its JSON form unchanged: ${JSON.stringify(json[i])}`);
      }
      checkedJson.set(fresh[i]!, json[i]!);
    }
  }
  return rules.map((r) => checkedJson.get(r)!);
}

/**
 * Rules already turned into their checked JSON form. Rules are never changed once made, and an
 * import hands the rules it keeps back as the same objects: only new rules cost a conversion.
 */
const checkedJson = new WeakMap<Rule, RuleJson>();

export class PolicyStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, POLICY_FILE);
  }

  /** The persisted policy, or undefined on a first start. Throws PolicyStateError. */
  load(): PersistedPolicy | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new PolicyStateError(this.path, (error as Error).message);
    }
    let record: { version?: unknown; revision?: unknown; rules?: unknown };
    try {
      record = JSON.parse(text);
    } catch (error) {
      throw new PolicyStateError(this.path, `not JSON: ${(error as Error).message}`);
    }
    if (record?.version !== FORMAT_VERSION) throw new PolicyStateError(this.path, `format version ${String(record?.version)}, expected ${FORMAT_VERSION}`);
    if (!Number.isInteger(record.revision) || (record.revision as number) < 1) throw new PolicyStateError(this.path, `revision ${String(record.revision)} is not a positive integer`);
    if (!Array.isArray(record.rules)) throw new PolicyStateError(this.path, "rules must be a list");
    try {
      return { revision: record.revision as number, rules: rulesFromJson(record.rules as RuleJson[]) };
    } catch (error) {
      if (error instanceof PolicyValidationError) throw new PolicyStateError(this.path, error.issues.map(formatIssue).join("; "));
      throw error;
    }
  }

  save(revision: number, rules: readonly RuleJson[]): void {
    writeFileAtomic(this.path, `${JSON.stringify({ version: FORMAT_VERSION, revision, rules }, null, 2)}\n`);
  }
}
