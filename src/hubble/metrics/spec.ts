/**
 * --hubble-metrics: which Hubble metrics to keep, in upstream's syntax. Handlers are separated by
 * whitespace or commas; each is `name` or `name:option=value;option=value`, e.g.
 * `drop:sourceContext=namespace;destinationContext=pod flow tcp`. A handler without options may
 * also be separated from the next by ";" (`drop;flow;tcp`). Pure: the agent's configuration
 * checks the flag with it before anything starts.
 */
import { applyContextOption, emptyContextOptions, type ContextOptions } from "./context.ts";

export const HUBBLE_METRIC_HANDLERS = ["drop", "flow", "tcp", "port-distribution", "icmp"] as const;
export type HubbleMetricName = (typeof HUBBLE_METRIC_HANDLERS)[number];

export interface HubbleMetricSpec {
  name: HubbleMetricName;
  context: ContextOptions;
  /** As written ("drop:sourceContext=pod"), for the effective configuration. */
  text: string;
}

export class HubbleMetricsSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HubbleMetricsSpecError";
  }
}

/** Parses the flag's value (or the values of a repeated flag); throws HubbleMetricsSpecError naming each problem. */
export function parseHubbleMetricsSpec(text: string | readonly string[]): HubbleMetricSpec[] {
  const problems: string[] = [];
  const specs: HubbleMetricSpec[] = [];
  for (const handler of handlerTexts(typeof text === "string" ? [text] : text)) {
    const colon = handler.indexOf(":");
    const name = colon < 0 ? handler : handler.slice(0, colon);
    if (!(HUBBLE_METRIC_HANDLERS as readonly string[]).includes(name)) {
      problems.push(`unknown metric "${name}" (known: ${HUBBLE_METRIC_HANDLERS.join(", ")})`);
      continue;
    }
    if (specs.some((spec) => spec.name === name)) {
      problems.push(`metric "${name}" is listed twice`);
      continue;
    }
    const context = emptyContextOptions();
    const optionProblems: string[] = [];
    for (const option of colon < 0 ? [] : handler.slice(colon + 1).split(";")) {
      if (option === "") continue;
      const equals = option.indexOf("=");
      if (equals <= 0 || equals === option.length - 1) {
        optionProblems.push(`option "${option}" must be name=value`);
        continue;
      }
      const problem = applyContextOption(context, option.slice(0, equals), option.slice(equals + 1));
      if (problem !== undefined) optionProblems.push(problem);
    }
    problems.push(...optionProblems.map((problem) => `metric "${name}": ${problem}`));
    if (optionProblems.length === 0) specs.push({ name: name as HubbleMetricName, context, text: handler });
  }
  if (problems.length > 0) throw new HubbleMetricsSpecError(problems.join("; "));
  return specs;
}

/** One string per handler ("drop:sourceContext=pod", "flow"). */
function handlerTexts(values: readonly string[]): string[] {
  const handlers: string[] = [];
  for (const word of values.flatMap((value) => value.split(/\s+/)).filter(Boolean)) {
    // A comma starts the next handler only before a handler's name: labelsContext values
    // ("source_ip,destination_ip") hold commas too.
    for (const piece of word.split(/,(?=[A-Za-z][A-Za-z0-9-]*(?::|;|,|$))/)) {
      if (piece === "") continue;
      if (piece.includes(":")) handlers.push(piece);
      else handlers.push(...piece.split(";").filter(Boolean));
    }
  }
  return handlers;
}
