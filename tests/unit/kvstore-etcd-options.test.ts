import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, configByOption, resolveAgentConfig, type ConfigSources, type HostFacts } from "../../src/agent/config.ts";
import { parseDurationMs as parseDuration } from "../../src/duration.ts";
import { parseEtcdConfigFile, parseKvstoreOpt } from "../../src/kvstore/etcd/options.ts";
import { claimLabels, labelsText, parseLabelsText } from "../../src/kvstore/etcd/keys.ts";
import { prefixEnd } from "../../src/kvstore/etcd/client.ts";
import { LabelSet } from "../../src/identity/labels.ts";

const host: HostFacts = { hostname: "node-a", groupId: () => 0, groupName: () => "root", primaryGid: 0 };
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function resolve(flags: Record<string, string>, configDir?: ConfigSources["configDir"]) {
  return resolveAgentConfig({ flags: { "ipv4-range": "10.200.0.0/24", ...flags }, env: {}, configDir }, host);
}

function problems(flags: Record<string, string>): string[] {
  try {
    resolve(flags);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("no problem found");
}

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "etcd-config-"));
  dirs.push(dir);
  const path = join(dir, "etcd.config");
  writeFileSync(path, text);
  return path;
}

describe("--kvstore and --kvstore-opt", () => {
  test("none by default: single node", () => {
    expect(resolve({}).kvstore).toBeUndefined();
  });

  test("etcd.address with several URLs, and the lease TTL", () => {
    const config = resolve({ kvstore: "etcd", "kvstore-opt": "etcd.address=http://10.0.0.1:2379,http://10.0.0.2:2379", "kvstore-lease-ttl": "5s" });
    expect(config.kvstore).toEqual({ type: "etcd", etcd: { endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"] }, leaseTtlMs: 5000 });
    expect(configByOption(config)).toMatchObject({ kvstore: "etcd", "kvstore-opt": "etcd.address=http://10.0.0.1:2379,http://10.0.0.2:2379", "kvstore-lease-ttl": "5s" });
    expect(resolve({ kvstore: "etcd", "kvstore-opt": "etcd.address=http://10.0.0.1:2379" }).kvstore?.leaseTtlMs).toBe(15_000);
  });

  test("etcd.config: upstream's YAML file with endpoints and TLS files", () => {
    const path = configFile("endpoints:\n- https://etcd-0:2379\n- https://etcd-1:2379\ntrusted-ca-file: /etc/ca.crt\ncert-file: /etc/c.crt\nkey-file: /etc/c.key\n");
    expect(resolve({ kvstore: "etcd", "kvstore-opt": `etcd.config=${path}` }).kvstore?.etcd).toEqual({
      endpoints: ["https://etcd-0:2379", "https://etcd-1:2379"],
      tls: { trustedCaFile: "/etc/ca.crt", certFile: "/etc/c.crt", keyFile: "/etc/c.key" },
      configFile: path,
    });
  });

  test("from the config dir, as a ConfigMap holds them", () => {
    const config = resolve({}, { path: "/etc/cilium", values: { kvstore: "etcd\n", "kvstore-opt": "etcd.address=http://127.0.0.1:2379\n" } });
    expect(config.kvstore?.etcd.endpoints).toEqual(["http://127.0.0.1:2379"]);
  });

  test("bad input: each problem named", () => {
    expect(problems({ kvstore: "consul" })).toEqual(['--kvstore "consul": unknown kvstore; supported: etcd']);
    expect(problems({ kvstore: "etcd" })).toEqual(["--kvstore-opt: --kvstore etcd needs --kvstore-opt etcd.address=URL[,URL...] or etcd.config=FILE"]);
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.bogus=1" })).toEqual(['--kvstore-opt "etcd.bogus=1": unknown option "etcd.bogus" (known: etcd.address, etcd.config)']);
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.address=10.0.0.1:2379" })[0]).toContain('"10.0.0.1:2379" is not a URL (want http://HOST:PORT or https://HOST:PORT)');
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.address=unix://x:1" })[0]).toContain("the scheme must be http or https");
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.address=http://10.0.0.1" })[0]).toContain("give the port");
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.config=/nonexistent/etcd.yaml" })).toEqual(["--kvstore-opt: etcd.config /nonexistent/etcd.yaml: cannot read: ENOENT"]);
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.config=relative.yaml" })[0]).toContain("must be an absolute path");
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.address=http://a:1,etcd.config=/x" })[0]).toContain("not both");
    expect(problems({ "kvstore-opt": "etcd.address=http://a:1" })[0]).toContain("given without --kvstore");
    expect(problems({ kvstore: "etcd", "kvstore-opt": "etcd.address=http://a:1", "kvstore-lease-ttl": "1s" })[0]).toContain("a duration from 2s to 24h");
  });
});

describe("the etcd config file", () => {
  test("problems name the file and the field", () => {
    expect(() => parseEtcdConfigFile("/f", "endpoints: []\n")).toThrow("etcd.config /f: endpoints must be a non-empty list of URLs");
    expect(() => parseEtcdConfigFile("/f", "endpoints: [http://a:1]\ntimeout: 3\n")).toThrow("unknown field timeout");
    expect(() => parseEtcdConfigFile("/f", "endpoints: [https://a:1]\ncert-file: /c\n")).toThrow("cert-file and key-file go together");
    expect(() => parseEtcdConfigFile("/f", "endpoints: [http://a:1]\ntrusted-ca-file: /ca\n")).toThrow("no endpoint is https://");
    expect(() => parseEtcdConfigFile("/f", "- a\n- b\n")).toThrow("must be a mapping");
  });
});

describe("pieces", () => {
  test("kvstore-opt keeps commas inside a value", () => {
    expect(parseKvstoreOpt("etcd.address=http://a:1,http://b:2")).toEqual({ value: { "etcd.address": "http://a:1,http://b:2" } });
    expect(parseKvstoreOpt("http://a:1")).toEqual({ problem: '"http://a:1" is not key=value' });
  });

  test("durations as Go prints them", () => {
    expect(parseDuration("15s")).toBe(15_000);
    expect(parseDuration("1m30s")).toBe(90_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("15")).toBeUndefined();
  });

  test("label sets in keys: upstream's text, sorted, and back", () => {
    const set = LabelSet.parse(["k8s:tier=front", "k8s:app=web"]);
    expect(labelsText(set)).toBe("k8s:app=web;k8s:tier=front;");
    expect(parseLabelsText(labelsText(set)).key).toBe(set.key);
    expect(claimLabels("k8s:app=web;k8s:tier=front;/node-1")).toBe("k8s:app=web;k8s:tier=front;");
  });

  test("a prefix's range end", () => {
    expect(prefixEnd("a/").toString()).toBe("a0");
    expect([...prefixEnd("a\xff")]).toEqual([0x61, 0xc3, 0xc0]);
  });
});
