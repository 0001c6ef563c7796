/**
 * `hubble observe`: flags -> GetFlowsRequest exactly as the upstream CLI builds it, then the
 * stream printed in the chosen format. Everything that can be wrong with the flags is reported
 * before connecting.
 */
import type { FlowFilter } from "../filters/flow-filter.ts";
import type { Timestamp } from "../flow/types.ts";
import { toJsonValue } from "../proto/json.ts";
import { FlowPrinter, OUTPUT_FORMATS, type FlowsResponse, type OutputFormat } from "../printer/printer.ts";
import { nodeStatusText, type NodeStatusResponse } from "../printer/node-status.ts";
import { timeFormatter } from "../printer/time-format.ts";
import { parseBool, parseFlags, parseUint, UsageError, type FlagKind } from "./args.ts";
import { SERVER_FLAGS, SERVER_SHORTS, ServerSettings } from "./connection.ts";
import { FILTER_FLAGS, FILTER_SHORT_FLAGS, FlowFilterBuilder, VALUELESS_FILTER_FLAGS } from "./flow-filters.ts";
import { StdoutBuffer, writeAllSync } from "./stdout.ts";
import { parseTimeFlag } from "./time.ts";

/** Flows printed by a plain `hubble observe` (upstream's FlowPrintCount). */
const DEFAULT_LAST = 20n;
const ALL_FLOWS = 2n ** 64n - 1n;

/** The fields compact, dict and table print: upstream asks the server for only these. */
export const DEFAULT_FIELD_MASK = [
  "time",
  "verdict",
  "ethernet",
  "IP",
  "l4",
  "source.identity",
  "source.namespace",
  "source.pod_name",
  "destination.identity",
  "destination.namespace",
  "destination.pod_name",
  "Type",
  "node_name",
  "l7",
  "event_type",
  "source_service",
  "destination_service",
  "is_reply",
  "Summary",
  "ip_trace_id",
];

const OBSERVE_FLAGS: Record<string, FlagKind> = {
  all: "bool",
  last: "value",
  first: "value",
  follow: "bool",
  since: "value",
  until: "value",
  output: "value",
  "print-node-name": "bool",
  "print-policy-names": "bool",
  "time-format": "value",
  "ip-translation": "bool",
  numeric: "bool",
  color: "value",
  "field-mask": "value",
  "use-default-field-masks": "bool",
  "silent-errors": "bool",
  ...SERVER_FLAGS,
};

const OBSERVE_SHORTS: Record<string, string> = { f: "follow", o: "output", s: "silent-errors", ...FILTER_SHORT_FLAGS, ...SERVER_SHORTS };

export interface GetFlowsRequest {
  number?: bigint;
  first?: boolean;
  follow?: boolean;
  whitelist?: FlowFilter[];
  blacklist?: FlowFilter[];
  since?: Timestamp;
  until?: Timestamp;
  field_mask?: { paths: string[] };
}

export interface ObserveOptions {
  request: GetFlowsRequest;
  output: OutputFormat;
  nodeName: boolean;
  timeFormat: string;
  ipTranslation: boolean;
  /** HUBBLE_COMPAT=legacy-json-output: `-o json` prints bare flows, as hubble <= 0.10. */
  legacyJson: boolean;
  server: ServerSettings;
}

/** Parses `hubble observe` arguments; throws UsageError (or a filter error) on anything wrong. */
export function parseObserveArgs(argv: readonly string[], env: Record<string, string | undefined>, nowMs: number): ObserveOptions {
  const filters = new FlowFilterBuilder();
  const server = new ServerSettings(env);
  let all = false;
  let last = 0n;
  let first = 0n;
  let follow = false;
  let since = "";
  let until = "";
  let output = "compact";
  let nodeName = false;
  let timeFormat = "StampMilli";
  let ipTranslation = true;
  let fieldMask: string[] = [];
  let useDefaultMasks = true;
  const table = {
    kind: (name: string): FlagKind | undefined => OBSERVE_FLAGS[name] ?? (FILTER_FLAGS.has(name) ? (VALUELESS_FILTER_FLAGS.has(name) ? "optional" : "value") : undefined),
    shorts: OBSERVE_SHORTS,
  };
  const positionals = parseFlags(argv, table, (name, value) => {
    if (FILTER_FLAGS.has(name)) return filters.set(name, value);
    if (server.set(name, value)) return;
    switch (name) {
      case "all":
        all = parseBool(name, value);
        return;
      case "last":
        last = parseUint(name, value);
        return;
      case "first":
        first = parseUint(name, value);
        return;
      case "follow":
        follow = parseBool(name, value);
        return;
      case "since":
        since = value;
        return;
      case "until":
        until = value;
        return;
      case "output":
        output = value;
        return;
      case "print-node-name":
        nodeName = parseBool(name, value);
        return;
      case "time-format":
        timeFormat = value;
        return;
      case "ip-translation":
        ipTranslation = parseBool(name, value);
        return;
      case "numeric":
        if (parseBool(name, value)) ipTranslation = false;
        return;
      case "field-mask":
        fieldMask.push(...value.split(",").filter((p) => p !== ""));
        return;
      case "use-default-field-masks":
        useDefaultMasks = parseBool(name, value);
        return;
      // --color (printers here never colour) and --silent-errors change nothing we print.
    }
  });
  // `hubble observe flows` is upstream's longer name for the same command.
  if (positionals[0] === "flows") positionals.shift();
  if (positionals.length > 0) throw new UsageError(`unknown command "${positionals[0]}" for "hubble observe"`);
  const { whitelist, blacklist } = filters.build();

  if (output === "JSON") output = "json";
  if (output === "tab") output = "table";
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) throw new UsageError(`invalid output format: ${output}`);
  if (output === "table" && follow) throw new UsageError("table output format is not compatible with follow mode");
  const json = output === "json" || output === "jsonpb";
  if (!json) {
    if (fieldMask.length > 0) throw new UsageError(`${output} output format is not compatible with custom field mask`);
    if (useDefaultMasks) fieldMask = DEFAULT_FIELD_MASK;
  }
  timeFormatter(timeFormat);

  const hasFirst = first > 0n;
  const hasLast = last > 0n;
  if (hasFirst && hasLast) throw new UsageError("cannot set both --first and --last");
  if (hasFirst && all) throw new UsageError("cannot set both --first and --all");
  if (hasFirst && follow) throw new UsageError("cannot set both --first and --follow");
  if (hasLast && all) throw new UsageError("cannot set both --last and --all");

  const timeFlag = (which: string, value: string) => {
    try {
      return parseTimeFlag(value, nowMs);
    } catch (err) {
      throw new UsageError(`failed to parse the ${which} time: ${(err as Error).message}`);
    }
  };
  const sinceTs = since !== "" ? timeFlag("since", since) : undefined;
  // As upstream: --until is ignored in follow mode.
  const untilTs = until !== "" && !follow ? timeFlag("until", until) : undefined;

  let number = last;
  if (!sinceTs && !untilTs && !hasFirst) {
    if (all) number = ALL_FLOWS;
    else if (last === 0n && !follow) number = DEFAULT_LAST;
  }
  if (hasFirst) number = first;

  const request: GetFlowsRequest = {
    number,
    follow,
    whitelist,
    blacklist,
    ...(sinceTs ? { since: sinceTs } : {}),
    ...(untilTs ? { until: untilTs } : {}),
    first: hasFirst,
    ...(fieldMask.length > 0 ? { field_mask: { paths: fieldMask } } : {}),
  };
  const legacyJson = output === "json" && (env.HUBBLE_COMPAT ?? "").toLowerCase().split(",").includes("legacy-json-output");
  return { request, output: output as OutputFormat, nodeName, timeFormat, ipTranslation, legacyJson, server };
}

/** Runs the observe command to the end of the stream (or Ctrl-C in follow mode). */
export async function observe(opts: ObserveOptions): Promise<void> {
  const out = new StdoutBuffer();
  let flushQueued = false;
  const write = (text: string) => {
    out.write(text);
    // One write per batch of messages the connection delivered, so --follow output is prompt.
    if (!flushQueued) {
      flushQueued = true;
      queueMicrotask(() => {
        flushQueued = false;
        out.flush();
      });
    }
  };
  const printer = new FlowPrinter({ output: opts.output, nodeName: opts.nodeName, timeFormat: opts.timeFormat, ipTranslation: opts.ipTranslation, write });
  const time = timeFormatter(opts.timeFormat);
  let nodeStatusFirst = true;
  const [{ decodeMessage, encodeMessage }, client] = await Promise.all([import("../proto/wire.ts"), opts.server.connect()]);
  const ac = new AbortController();
  const interrupt = () => ac.abort();
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  try {
    await client.call("/observer.Observer/GetFlows", encodeMessage("observer.GetFlowsRequest", opts.request), (payload) => {
      const res = decodeMessage<FlowsResponse & NodeStatusResponse>("observer.GetFlowsResponse", payload);
      if (res.node_status) {
        const text = nodeStatusText(res, opts.output, time, nodeStatusFirst);
        if (text !== undefined) {
          nodeStatusFirst = false;
          writeAllSync(2, text);
        }
        return;
      }
      if (opts.legacyJson) {
        if (res.flow) write(`${JSON.stringify(toJsonValue("flow.Flow", res.flow))}\n`);
        return;
      }
      printer.write(res);
    }, { signal: ac.signal });
  } catch (err) {
    // Ctrl-C ends a follow quietly, as upstream.
    if (!ac.signal.aborted) throw err;
  } finally {
    process.off("SIGINT", interrupt);
    process.off("SIGTERM", interrupt);
    printer.close();
    out.flush();
    client.close();
  }
}
