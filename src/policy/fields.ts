/**
 * Reading untyped documents (parsed JSON/YAML) field by field, collecting every problem with its
 * JSON path instead of stopping at the first: the validators of CiliumNetworkPolicy and
 * Kubernetes NetworkPolicy are written with these.
 *
 * `null` counts as absent, as Go's JSON decoding of the upstream types does (a null list is nil).
 */
import type { ValidationIssue } from "./errors.ts";

export class Issues {
  readonly list: ValidationIssue[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

export const at = (path: string, field: string): string => (path === "" ? field : `${path}.${field}`);
export const item = (path: string, index: number): string => `${path}[${index}]`;

export type Fields = Record<string, unknown>;

export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

export function asObject(value: unknown, path: string, issues: Issues): Fields | undefined {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) return value as Fields;
  issues.add(path, `must be an object, not ${describeType(value)}`);
  return undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function suggestion(name: string, known: readonly string[]): string {
  const close = known.find((k) => k.toLowerCase() === name.toLowerCase()) ?? known.find((k) => editDistance(k, name) <= 2);
  return close ? ` (did you mean "${close}"?)` : "";
}

/**
 * Reports fields that are not `known`. `explained` gives the message for fields worth more than
 * "unknown field": upstream fields this implementation refuses (so a policy relying on them is not
 * half-applied), or fields of the other direction.
 */
export function checkFields(obj: Fields, path: string, issues: Issues, known: readonly string[], explained: Readonly<Record<string, string>> = {}): void {
  for (const name of Object.keys(obj)) {
    if (known.includes(name)) continue;
    issues.add(at(path, name), explained[name] ?? `unknown field${suggestion(name, known)}`);
  }
}

export const notSupported = (reason: string): string => `not supported: ${reason}`;

export function optionalList(obj: Fields, field: string, path: string, issues: Issues): unknown[] | undefined {
  const value = obj[field];
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value;
  issues.add(at(path, field), `must be a list, not ${describeType(value)}`);
  return undefined;
}

export function optionalString(obj: Fields, field: string, path: string, issues: Issues): string | undefined {
  const value = obj[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  issues.add(at(path, field), `must be a string, not ${describeType(value)}`);
  return undefined;
}

export function optionalBoolean(obj: Fields, field: string, path: string, issues: Issues): boolean | undefined {
  const value = obj[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value === "boolean") return value;
  issues.add(at(path, field), `must be true or false, not ${describeType(value)}`);
  return undefined;
}
