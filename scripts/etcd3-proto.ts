/**
 * etcd3 reads its .proto files from disk when its connection pool module loads
 * (`loadSync(__dirname + "/../proto/rpc.proto")`), which fails inside a compiled executable: the
 * files are not there. This Bun build plugin compiles them into a protobufjs JSON descriptor at
 * build time and rewrites that one call into `fromJSON(<descriptor>)`, with the same options, so
 * the executable carries the definitions.
 */
import type { BunPlugin } from "bun";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import protobuf from "protobufjs";

const LOAD_CALL = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, \{/;

/** etcd3's rpc.proto (with kv.proto and auth.proto) as a protobufjs JSON descriptor. */
export function etcd3Descriptor(protoDir: string): string {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoDir, target.replace(/^\.\//, ""));
  root.loadSync("rpc.proto", { keepCase: true });
  root.resolveAll();
  return JSON.stringify(root.toJSON());
}

export const etcd3ProtoPlugin: BunPlugin = {
  name: "etcd3-inline-proto",
  setup(build) {
    build.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, ({ path }) => {
      const source = readFileSync(path, "utf8");
      if (!LOAD_CALL.test(source)) throw new Error(`${path}: etcd3's proto loading changed; update scripts/etcd3-proto.ts`);
      const descriptor = etcd3Descriptor(join(dirname(path), "..", "proto"));
      const contents = source.replace(LOAD_CALL, `(0, proto_loader_1.fromJSON)(${descriptor}, {`);
      return { contents, loader: "js" };
    });
  },
};
