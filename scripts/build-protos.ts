#!/usr/bin/env bun
/**
 * Compiles proto/ (our Hubble, relay, peer and gRPC health definitions) into one protobufjs JSON
 * descriptor, src/hubble/proto/descriptor.json. The executable imports that JSON so it is
 * embedded: loading .proto files at run time fails inside a compiled binary.
 *
 *   bun scripts/build-protos.ts           write the descriptor
 *   bun scripts/build-protos.ts --check   exit 1 if the committed descriptor is stale
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";

const root = join(import.meta.dir, "..");
export const PROTO_FILES = ["flow/flow.proto", "relay/relay.proto", "observer/observer.proto", "peer/peer.proto", "grpc/health/v1/health.proto"];
export const DESCRIPTOR_PATH = join(root, "src/hubble/proto/descriptor.json");

/** The descriptor text for the current proto/ sources (deterministic: same input, same bytes). */
export function compileDescriptor(): string {
  const pb = new protobuf.Root();
  pb.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") ? target : join(root, "proto", target));
  // keepCase: fields keep their proto names (source_port, IP, Type), which is also what
  // upstream's JSON output uses, so one object shape serves the wire and the printers.
  pb.loadSync(PROTO_FILES, { keepCase: true });
  pb.resolveAll();
  return `${JSON.stringify(pb.toJSON(), null, 1)}\n`;
}

if (import.meta.main) {
  const text = compileDescriptor();
  if (process.argv.includes("--check")) {
    const current = readFileSync(DESCRIPTOR_PATH, "utf8");
    if (current !== text) {
      console.error(`${DESCRIPTOR_PATH} is stale: run bun scripts/build-protos.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(DESCRIPTOR_PATH, text);
    console.log(`wrote ${DESCRIPTOR_PATH}`);
  }
}
