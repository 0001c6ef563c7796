import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAgentConfig, readConfigDir } from "../../src/agent/config-sources.ts";
import { ConfigError, configByOption, podMtu, resolveAgentConfig, unknownConfigDirOptions, type ConfigSources, type HostFacts } from "../../src/agent/config.ts";

const host: HostFacts = {
  hostname: "node-a",
  groupId: (name) => ({ root: 0, cilium: 998, wheel: 10 })[name],
  groupName: (gid) => ({ 0: "root", 998: "cilium", 10: "wheel" })[gid],
  primaryGid: 0,
};
const noCiliumGroup: HostFacts = { ...host, groupId: (name) => (name === "root" ? 0 : undefined) };

function resolve(sources: Partial<ConfigSources>, facts = host) {
  return resolveAgentConfig({ flags: { "ipv4-range": "10.200.0.0/24", ...sources.flags }, env: sources.env ?? {}, configDir: sources.configDir }, facts);
}

function problemsOf(sources: Partial<ConfigSources>): string[] {
  try {
    resolveAgentConfig({ flags: sources.flags ?? {}, env: sources.env ?? {}, configDir: sources.configDir }, host);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("no problem found");
}

describe("defaults", () => {
  test("upstream's paths, the hostname, MTU 1500, masquerading on, devices from the datapath", () => {
    expect(resolve({})).toEqual({
      nodeName: "node-a",
      stateDir: "/var/run/cilium",
      bpfRoot: "/sys/fs/bpf",
      socketPath: "/var/run/cilium/cilium.sock",
      socketGroup: "cilium",
      socketGid: 998,
      ipv4Range: "10.200.0.0/24",
      mtu: 1500,
      enableIpv4Masquerade: true,
      devices: [],
      enablePolicy: "default",
      allowLocalhost: "auto",
      monitorAggregation: "medium",
      monitorSocketPath: "/var/run/cilium/monitor1_2.sock",
      routingMode: "tunnel",
      tunnelProtocol: "vxlan",
      tunnelPort: 8472,
      autoDirectNodeRoutes: false,
      hubble: { enabled: true, socketPath: "/var/run/cilium/hubble.sock", listenAddress: "", eventBufferCapacity: 4095 },
    });
  });

  test('the socket group is "cilium" when it exists, else the agent\'s own group', () => {
    expect(resolve({}, noCiliumGroup)).toMatchObject({ socketGroup: "root", socketGid: 0 });
  });
});

describe("precedence: flags, then config dir, then environment", () => {
  const configDir = { path: "/etc/cilium", values: { mtu: "1450\n", "node-name": "from-dir" } };

  test("a flag wins over the config dir and the environment", () => {
    const config = resolve({ flags: { mtu: "9000" }, configDir, env: { CILIUM_MTU: "1400" } });
    expect(config.mtu).toBe(9000);
  });

  test("the config dir wins over the environment", () => {
    const config = resolve({ configDir, env: { CILIUM_MTU: "1400", CILIUM_NODE_NAME: "from-env" } });
    expect(config.mtu).toBe(1450);
    expect(config.nodeName).toBe("from-dir");
    expect(config.configDir).toBe("/etc/cilium");
  });

  test("the environment wins over defaults: CILIUM_NODE_NAME before K8S_NODE_NAME", () => {
    expect(resolve({ env: { K8S_NODE_NAME: "k8s-node" } }).nodeName).toBe("k8s-node");
    expect(resolve({ env: { K8S_NODE_NAME: "k8s-node", CILIUM_NODE_NAME: "cilium-node" } }).nodeName).toBe("cilium-node");
    expect(resolve({ env: { CILIUM_ENABLE_IPV4_MASQUERADE: "false", CILIUM_DEVICES: "eth0, eth1" } })).toMatchObject({
      enableIpv4Masquerade: false,
      devices: ["eth0", "eth1"],
    });
  });

  test("booleans take flag values and Go's ParseBool strings", () => {
    expect(resolve({ flags: { "enable-ipv4-masquerade": false } }).enableIpv4Masquerade).toBe(false);
    expect(resolve({ configDir: { path: "/d", values: { "enable-ipv4-masquerade": "False" } } }).enableIpv4Masquerade).toBe(false);
    expect(resolve({ configDir: { path: "/d", values: { "enable-ipv4-masquerade": "1" } } }).enableIpv4Masquerade).toBe(true);
  });

  test("the effective configuration is reported by option name", () => {
    expect(configByOption(resolve({ configDir }))).toMatchObject({ "node-name": "from-dir", mtu: 1450, "ipv4-range": "10.200.0.0/24", "config-dir": "/etc/cilium" });
  });
});

describe("validation names the option, the value and the problem", () => {
  test("ipv4-range", () => {
    expect(problemsOf({})).toEqual([
      "--ipv4-range is required: this node's pod CIDR, e.g. --ipv4-range 10.200.0.0/24 (or --kvstore etcd, and the operator's cluster pool allocates it)",
    ]);
    // With etcd the operator allocates it: the agent waits for its CIDR.
    expect(resolve({ flags: { "ipv4-range": undefined, kvstore: "etcd", "kvstore-opt": "etcd.address=http://10.99.0.1:2379" } }).ipv4Range).toBe("");
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.0/33" } })).toEqual(['--ipv4-range "10.0.0.0/33": prefix length must be 0-32']);
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.5/24" } })).toEqual(['--ipv4-range "10.0.0.5/24": has host bits set: the network is 10.0.0.0/24']);
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.0" } })).toEqual(['--ipv4-range "10.0.0.0": is not a CIDR: expected address/prefix-length']);
    expect(problemsOf({ flags: { "ipv4-range": "10.0.300.0/24" } })).toEqual(['--ipv4-range "10.0.300.0/24": "10.0.300.0" is not an IPv4 address']);
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.0/31" } })[0]).toStartWith('--ipv4-range "10.0.0.0/31": prefix length must be at most 30');
  });

  test("every problem at once, with where a value came from", () => {
    const problems = problemsOf({
      flags: { "ipv4-range": "10.0.0.0/24", "state-dir": "relative/dir" },
      configDir: { path: "/etc/cilium", values: { mtu: "huge", "socket-group": "nosuchgroup" } },
      env: { CILIUM_DEVICES: "eth0,bad/name" },
    });
    expect(problems).toEqual([
      '--state-dir "relative/dir": must be an absolute path',
      '--socket-group "nosuchgroup" (from /etc/cilium/socket-group): no such group',
      '--mtu "huge" (from /etc/cilium/mtu): must be an integer from 68 to 65535',
      '--devices "eth0,bad/name" (from CILIUM_DEVICES): "bad/name" is not a valid interface name',
    ]);
  });

  test("policy options: --enable-policy, --allow-localhost, --bpf-policy-map-max", () => {
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.0/24", "enable-policy": "sometimes" }, configDir: { path: "/etc/cilium", values: { "allow-localhost": "maybe" } } })).toEqual([
      '--enable-policy "sometimes": must be default, always or never',
      '--allow-localhost "maybe" (from /etc/cilium/allow-localhost): must be auto, always or policy',
    ]);
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.0/24", "bpf-policy-map-max": "-1" } })).toEqual(['--bpf-policy-map-max "-1": must be a non-negative integer']);
    const config = resolve({ configDir: { path: "/etc/cilium", values: { "enable-policy": "always\n", "bpf-policy-map-max": "4096" } }, env: { CILIUM_ALLOW_LOCALHOST: "always" } });
    expect([config.enablePolicy, config.allowLocalhost, config.policyMapMax]).toEqual(["always", "always", 4096]);
    expect(configByOption(config)).toMatchObject({ "enable-policy": "always", "allow-localhost": "always", "bpf-policy-map-max": 4096 });
    expect(resolve({ flags: { "enable-policy": "never" } }).enablePolicy).toBe("never");
  });

  test("booleans and node names", () => {
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.0/24" }, env: { CILIUM_ENABLE_IPV4_MASQUERADE: "yes" } })).toEqual([
      '--enable-ipv4-masquerade "yes" (from CILIUM_ENABLE_IPV4_MASQUERADE): must be "true" or "false"',
    ]);
    expect(problemsOf({ flags: { "ipv4-range": "10.0.0.0/24", "node-name": "bad name" } })[0]).toStartWith('--node-name "bad name": must be 1-253');
  });

  test("a numeric socket group is taken as a gid", () => {
    expect(resolve({ flags: { "socket-group": "4242" } })).toMatchObject({ socketGroup: "4242", socketGid: 4242 });
  });
});

describe("the config dir, as a ConfigMap mounts it", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  test("one file per option; the ..data indirection and subdirectories are skipped", () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-config-"));
    dirs.push(dir);
    mkdirSync(join(dir, "..2024_01_01"));
    writeFileSync(join(dir, "..2024_01_01", "mtu"), "1450\n");
    writeFileSync(join(dir, "..2024_01_01", "cluster-name"), "default");
    symlinkSync("..2024_01_01", join(dir, "..data"));
    symlinkSync("..data/mtu", join(dir, "mtu"));
    symlinkSync("..data/cluster-name", join(dir, "cluster-name"));
    mkdirSync(join(dir, "subdir"));
    const values = readConfigDir(dir);
    expect(values).toEqual({ "cluster-name": "default", mtu: "1450\n" });
    expect(unknownConfigDirOptions(values)).toEqual(["cluster-name"]);

    const loaded = loadAgentConfig({ "ipv4-range": "10.1.0.0/24", "config-dir": dir }, {});
    expect(loaded.config.mtu).toBe(1450);
    expect(loaded.ignoredConfigDirEntries).toEqual(["cluster-name"]);
  });

  test("CILIUM_CONFIG_DIR names it too; a missing one is a configuration error", () => {
    expect(() => loadAgentConfig({ "ipv4-range": "10.1.0.0/24" }, { CILIUM_CONFIG_DIR: "/nonexistent/cilium-config" })).toThrow(
      '--config-dir "/nonexistent/cilium-config": cannot read the directory: ENOENT',
    );
  });
});

describe("monitor options", () => {
  test("--monitor-aggregation takes upstream's four levels, from a flag or the config dir", () => {
    for (const level of ["none", "low", "medium", "maximum"] as const) expect(resolve({ flags: { "monitor-aggregation": level } }).monitorAggregation).toBe(level);
    const configDir = { path: "/etc/cilium", values: { "monitor-aggregation": "none\n" } };
    expect(resolve({ configDir }).monitorAggregation).toBe("none");
  });

  test("a bad --monitor-aggregation names the option, the value and the levels", () => {
    expect(problemsOf({ flags: { "ipv4-range": "10.200.0.0/24", "monitor-aggregation": "verbose" } })).toEqual([
      '--monitor-aggregation "verbose": must be one of none, low, medium, maximum',
    ]);
  });

  test("the monitor socket sits next to the API socket unless --monitor-socket-path says otherwise", () => {
    expect(resolve({ flags: { "socket-path": "/run/n1/cilium.sock" } }).monitorSocketPath).toBe("/run/n1/monitor1_2.sock");
    expect(resolve({ flags: { "monitor-socket-path": "/run/m.sock" } }).monitorSocketPath).toBe("/run/m.sock");
    expect(problemsOf({ flags: { "ipv4-range": "10.200.0.0/24", "monitor-socket-path": "m.sock" } })).toEqual(['--monitor-socket-path "m.sock": must be an absolute path']);
  });
});

describe("routing: --routing-mode, --tunnel-protocol, --tunnel-port, --auto-direct-node-routes, --ipv4-native-routing-cidr", () => {
  test("tunnel mode over VXLAN port 8472 by default; pods get the MTU less 50 bytes", () => {
    const config = resolve({});
    expect(config).toMatchObject({ routingMode: "tunnel", tunnelProtocol: "vxlan", tunnelPort: 8472, autoDirectNodeRoutes: false });
    expect(podMtu(config)).toBe(1450);
    expect(podMtu(resolve({ flags: { mtu: "9000" } }))).toBe(8950);
    expect(configByOption(config)).toMatchObject({ "routing-mode": "tunnel", "tunnel-protocol": "vxlan", "tunnel-port": 8472, "auto-direct-node-routes": false });
  });

  test("native mode with direct routes keeps the whole MTU for pods", () => {
    const config = resolve({ flags: { "routing-mode": "native", "auto-direct-node-routes": "true", "ipv4-native-routing-cidr": "10.200.0.0/16" } });
    expect(config).toMatchObject({ routingMode: "native", autoDirectNodeRoutes: true, ipv4NativeRoutingCidr: "10.200.0.0/16" });
    expect(podMtu(config)).toBe(1500);
    expect(configByOption(config)).toMatchObject({ "ipv4-native-routing-cidr": "10.200.0.0/16" });
    expect(resolve({ flags: { "routing-mode": "native", "enable-ipv4-masquerade": "false" } }).ipv4NativeRoutingCidr).toBeUndefined();
  });

  test("bad values and contradictions name the problem", () => {
    const range = { "ipv4-range": "10.200.0.0/24" };
    expect(problemsOf({ flags: { ...range, "routing-mode": "overlay" } })).toEqual(['--routing-mode "overlay": must be tunnel or native']);
    expect(problemsOf({ flags: { ...range, "tunnel-protocol": "geneve" } })).toEqual(['--tunnel-protocol "geneve": geneve is not supported; use vxlan']);
    expect(problemsOf({ flags: { ...range, "tunnel-port": "70000" } })).toEqual(['--tunnel-port "70000": must be a port number from 1 to 65535']);
    expect(problemsOf({ flags: { ...range, "auto-direct-node-routes": true } })).toEqual([
      "--auto-direct-node-routes needs --routing-mode native: tunnel mode encapsulates instead of routing",
    ]);
    expect(problemsOf({ flags: { ...range, mtu: "100" } })).toEqual(["--mtu 100: tunnel mode leaves pods 50 bytes less, below IPv4's minimum of 68"]);
    expect(problemsOf({ flags: { ...range, "routing-mode": "native" } })).toEqual([
      "--ipv4-native-routing-cidr is required with --routing-mode native and masquerading: pod traffic to other nodes must not be masqueraded",
    ]);
    expect(problemsOf({ flags: { ...range, "routing-mode": "native", "ipv4-native-routing-cidr": "10.0.0.1/8" } })[0]).toContain("--ipv4-native-routing-cidr");
  });
});
