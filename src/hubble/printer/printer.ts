/**
 * `hubble observe -o compact|dict|json|jsonpb|table` output. One printer per output stream: dict
 * separates entries, table aligns columns over every line and so prints at close().
 */
import type { Flow, Timestamp } from "../flow/types.ts";
import { toJsonLine } from "../proto/json.ts";
import { enumName } from "../proto/schema.ts";
import { flowType, hostNames, identityText, summaryText, verdictText } from "./fields.ts";
import { timeFormatter, type TimeFormatter } from "./time-format.ts";

export const OUTPUT_FORMATS = ["compact", "dict", "json", "jsonpb", "table"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface PrinterOptions {
  output: OutputFormat;
  /** --print-node-name */
  nodeName?: boolean;
  /** --time-format name (default StampMilli) */
  timeFormat?: string;
  /** --ip-translation (default true): pod and service names instead of addresses. */
  ipTranslation?: boolean;
  /** Receives complete output text (one or more lines, each ending in "\n"). */
  write: (text: string) => void;
}

/** What a GetFlows stream delivers: a flow or lost events, with the node and time they came with. */
export interface FlowsResponse {
  flow?: Flow;
  lost_events?: { source: number; num_events_lost: number | string; cpu?: { value: number }; first?: Timestamp; last?: Timestamp };
  node_name?: string;
  time?: Timestamp;
}

const DICT_SEPARATOR = "------------";
const TABLE_HEADER = ["TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"];

/** Go text/tabwriter as hubble configures it: cells padded to the column's widest + 3; the last cell free. */
export function alignColumns(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.slice(0, -1).forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length + 3)));
  return rows.map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("") + "\n").join("");
}

export class FlowPrinter {
  private readonly time: TimeFormatter;
  private readonly translate: boolean;
  private count = 0;
  private readonly rows: string[][] = [];

  constructor(private readonly opts: PrinterOptions) {
    this.time = timeFormatter(opts.timeFormat ?? "StampMilli");
    this.translate = opts.ipTranslation ?? true;
  }

  /** Prints one GetFlows response (flow or lost events; other kinds are ignored). */
  write(res: FlowsResponse): void {
    if (this.opts.output === "json" || this.opts.output === "jsonpb") {
      if (res.flow || res.lost_events) this.opts.write(`${toJsonLine("observer.GetFlowsResponse", res)}\n`);
      return;
    }
    if (res.flow) this.writeFlow(res.flow);
    else if (res.lost_events) this.writeLost(res.lost_events, res);
    else return;
    this.count++;
  }

  /** Flushes buffered output (the table). */
  close(): void {
    if (this.rows.length > 0) this.opts.write(alignColumns(this.rows));
    this.rows.length = 0;
  }

  private tableRow(cells: string[]): void {
    if (this.count === 0) this.rows.push(this.opts.nodeName ? [TABLE_HEADER[0]!, "NODE", ...TABLE_HEADER.slice(1)] : [...TABLE_HEADER]);
    this.rows.push(cells);
  }

  private writeFlow(f: Flow): void {
    const [src, dst] = hostNames(f, this.translate);
    const time = this.time(f.time);
    const node = f.node_name ?? "";
    const type = flowType(f);
    const verdict = verdictText(f);
    const summary = summaryText(f);
    switch (this.opts.output) {
      case "table":
        this.tableRow([time, ...(this.opts.nodeName ? [node] : []), src, dst, type, verdict, summary]);
        return;
      case "dict": {
        const lines = [
          ...(this.count > 0 ? [DICT_SEPARATOR] : []),
          `  TIMESTAMP: ${time}`,
          ...(this.opts.nodeName ? [`       NODE: ${node}`] : []),
          `     SOURCE: ${src}`,
          `DESTINATION: ${dst}`,
          `       TYPE: ${type}`,
          `    VERDICT: ${verdict}`,
          `    SUMMARY: ${summary}`,
        ];
        this.opts.write(lines.map((l) => `${l}\n`).join(""));
        return;
      }
      case "compact": {
        let [from, to] = [src, dst];
        let [fromId, toId] = [identityText(f.source?.identity), identityText(f.destination?.identity)];
        let arrow = "<>";
        if (f.is_reply?.value === true) {
          // Replies are printed from the initiator's point of view, with the arrow flipped.
          [from, to, fromId, toId, arrow] = [to, from, toId, fromId, "<-"];
        } else if (f.is_reply?.value === false) arrow = "->";
        const nodePart = this.opts.nodeName ? ` [${node}]` : "";
        this.opts.write(`${time}${nodePart}: ${from} ${fromId} ${arrow} ${to} ${toId} ${type} ${verdict} (${summary})\n`);
        return;
      }
    }
  }

  private writeLost(lost: NonNullable<FlowsResponse["lost_events"]>, res: FlowsResponse): void {
    const source = enumName("flow.LostEventSource", lost.source) ?? String(lost.source);
    const time = this.time(res.time);
    const window = lost.first && lost.last ? ` (first: ${this.time(lost.first)}, last: ${this.time(lost.last)})` : "";
    const cpu = lost.cpu?.value ?? 0;
    const node = res.node_name || "-";
    switch (this.opts.output) {
      case "table":
        this.tableRow([time, ...(this.opts.nodeName ? [node] : []), source, "-", "EVENTS LOST", "-", `CPU(${cpu}) - ${lost.num_events_lost}${window}`]);
        return;
      case "dict": {
        const lines = [
          ...(this.count > 0 ? [DICT_SEPARATOR] : []),
          `  TIMESTAMP: ${time}`,
          ...(this.opts.nodeName ? [`       NODE: ${node}`] : []),
          `     SOURCE: ${source}`,
          "       TYPE: EVENTS LOST",
          "    VERDICT: -",
          `    SUMMARY: CPU(${cpu}) - ${lost.num_events_lost}${window}`,
        ];
        this.opts.write(lines.map((l) => `${l}\n`).join(""));
        return;
      }
      case "compact":
        this.opts.write(`${time} EVENTS LOST: ${source} CPU(${cpu}) ${lost.num_events_lost}${window}\n`);
        return;
    }
  }
}
