/**
 * The build inlines etcd3's .proto files (scripts/etcd3-proto.ts): the descriptor holds the
 * services the client uses, and the installed etcd3 still loads its protos the way the plugin
 * rewrites (an etcd3 upgrade that changes it fails here, not in a compiled binary at run time).
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { etcd3Descriptor, etcd3ProtoPlugin } from "../../scripts/etcd3-proto.ts";

const etcd3 = join(import.meta.dir, "../../node_modules/etcd3");

test("the descriptor has etcd's KV, Lease and Watch services with their snake_case fields", () => {
  const descriptor = JSON.parse(etcd3Descriptor(join(etcd3, "proto")));
  const pb = descriptor.nested.etcdserverpb.nested;
  for (const service of ["KV", "Lease", "Watch", "Auth", "Cluster", "Maintenance"]) expect(pb[service].methods).toBeDefined();
  expect(Object.keys(pb.Compare.fields)).toContain("range_end");
  expect(Object.keys(pb.RangeRequest.fields)).toContain("range_end");
  expect(descriptor.nested.mvccpb.nested.KeyValue.fields.create_revision).toBeDefined();
});

test("the plugin rewrites etcd3's loadSync of rpc.proto into fromJSON", async () => {
  let onLoad: ((args: { path: string }) => { contents: string }) | undefined;
  await etcd3ProtoPlugin.setup({ onLoad: (_filter: unknown, callback: typeof onLoad) => void (onLoad = callback) } as never);
  const path = join(etcd3, "lib/connection-pool.js");
  const { contents } = onLoad!({ path });
  expect(readFileSync(path, "utf8")).toContain("loadSync)(`${__dirname}/../proto/rpc.proto`");
  expect(contents).not.toContain("rpc.proto`");
  expect(contents).toContain('(0, proto_loader_1.fromJSON)({"nested":{"etcdserverpb"');
});
