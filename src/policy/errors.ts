/**
 * Validation failures of a policy import. Every issue names the JSON path of the offending field
 * ("specs[1].ingress[0].toPorts[0].ports[0].port: must be 0-65535"); an import with any issue is
 * refused whole.
 */

export interface ValidationIssue {
  /** JSON path from the document root; "" for the document itself. */
  path: string;
  message: string;
  /** 1-based document number, when the input had several (YAML "---"). */
  document?: number;
}

export function formatIssue(issue: ValidationIssue): string {
  const where = [issue.document === undefined ? "" : `document ${issue.document}`, issue.path].filter((s) => s !== "").join(": ");
  return where === "" ? issue.message : `${where}: ${issue.message}`;
}

export class PolicyValidationError extends Error {
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[]) {
    super(issues.length === 1 ? formatIssue(issues[0]!) : `${issues.length} problems:\n${issues.map(formatIssue).join("\n")}`);
    this.name = "PolicyValidationError";
    this.issues = issues;
  }
}
