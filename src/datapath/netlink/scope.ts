/** Address and route scopes (enum rt_scope_t in linux/rtnetlink.h) by name. */
import { RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_SITE, RT_SCOPE_UNIVERSE } from "./constants.ts";

/** "universe" is what `ip` prints as "global". Scopes without a name stay numbers. */
export type Scope = "universe" | "site" | "link" | "host" | "nowhere" | number;

const byName = {
  universe: RT_SCOPE_UNIVERSE,
  site: RT_SCOPE_SITE,
  link: RT_SCOPE_LINK,
  host: RT_SCOPE_HOST,
  nowhere: RT_SCOPE_NOWHERE,
} as const;

const byValue = new Map<number, Scope>(Object.entries(byName).map(([name, value]) => [value, name as Scope]));

export function scopeValue(scope: Scope): number {
  if (typeof scope === "number") return scope;
  const value = byName[scope];
  if (value === undefined) throw new TypeError(`unknown scope "${scope}"`);
  return value;
}

export function scopeName(value: number): Scope {
  return byValue.get(value) ?? value;
}
