/** hubble observe output formats. */
export { FlowPrinter, OUTPUT_FORMATS, alignColumns, type FlowsResponse, type OutputFormat, type PrinterOptions } from "./printer.ts";
export { timeFormatter, TIME_FORMAT_NAMES, type TimeFormatter } from "./time-format.ts";
