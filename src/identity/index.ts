/** Security identities: labels, numbers, reserved identities, allocation, CIDR identities. Pure. */
export * from "./labels.ts";
export * from "./identity.ts";
export * from "./reserved.ts";
export * from "./backend.ts";
export * from "./allocator.ts";
export * from "./cidr.ts";
