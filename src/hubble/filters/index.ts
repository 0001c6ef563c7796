/** GetFlows filters (whitelist/blacklist of flow.FlowFilter). */
export { compileFilter, compileFilterLists } from "./compile.ts";
export { FilterError, type FlowPredicate } from "./match.ts";
export type { FlowFilter, EventTypeFilter } from "./flow-filter.ts";
export { parseLabelSelector, LabelSelectorError, type LabelSelector } from "./label-selector.ts";
