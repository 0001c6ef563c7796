/** Datapath event records to Flows. */
export { FlowEvent, FlowParser, recordSeconds, type FlowParserOptions } from "./parser.ts";
export { RecentEndpoints, type EndpointInfo, type EndpointResolver, type RecentEndpointsOptions } from "./endpoints.ts";
export { monotonicToWall, type KtimeToWall } from "./clock.ts";
export { decodeEventRecord, EventRecordError, EVENT_HEADER_LEN, type EventRecord } from "./record.ts";
