export { Ipam, type IpamStatus } from "./ipam.ts";
export { IpamError, MAX_POOL_PREFIX, type IpamErrorReason } from "./pool.ts";
