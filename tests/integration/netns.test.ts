/**
 * Named namespaces made by our Netns (checked with `ip netns`), switching the JS thread in and
 * always back out, and per-namespace sysctls. Namespaces are named tns<pid>-..., removed in
 * afterAll even when a test fails.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fstatSync, readFileSync, statSync } from "node:fs";
import { SyscallError } from "../../src/datapath/errors.ts";
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { Netns } from "../../src/datapath/netns.ts";
import { readSysctl, sysctlPath, writeSysctl } from "../../src/datapath/sysctl.ts";
import { execInNetns, ipJson, netnsExists, spawnInNetns, TestNamespaces, uniquePrefix, waitFor } from "../helpers/netns.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const P = uniquePrefix("tns");

/** The inode of this thread's network namespace: equal inodes mean the same namespace. */
function currentInode(): number {
  return statSync("/proc/thread-self/ns/net").ino;
}

describePrivileged("netns: named namespaces, run, sysctl", () => {
  const spaces = new TestNamespaces(P);
  const handles: Netns[] = [];
  let home = 0;
  let ns: Netns;
  let other: Netns;

  beforeAll(() => {
    home = currentInode();
    ns = Netns.create(spaces.track(`${P}-one`));
    other = Netns.create(spaces.track(`${P}-two`));
    handles.push(ns, other);
  });

  afterAll(() => {
    for (const handle of handles) handle.close();
    spaces.removeAll();
  });

  test("create makes a namespace ip netns sees, under a shared /var/run/netns", () => {
    expect(ns.path).toBe(`/var/run/netns/${P}-one`);
    expect(netnsExists(`${P}-one`)).toBe(true);
    expect(fstatSync(ns.fd).ino).not.toBe(home);
    expect(fstatSync(ns.fd).ino).not.toBe(fstatSync(other.fd).ino);
    expect(ipJson<{ ifname: string }[]>(["link"], `${P}-one`).map((link) => link.ifname)).toEqual(["lo"]);
    const mount = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .find((line) => line.split(" ")[4] === "/run/netns");
    expect(mount).toMatch(/ shared:\d+/);
    expect(currentInode()).toBe(home);
  });

  test("create refuses an existing name; remove undoes create; names are validated", () => {
    const error = (() => {
      try {
        Netns.create(`${P}-one`);
      } catch (caught) {
        return caught as SyscallError;
      }
    })();
    expect(error).toBeInstanceOf(SyscallError);
    expect(error!.code).toBe("EEXIST");
    expect(error!.message).toBe(`create netns ${P}-one: EEXIST (file exists): /var/run/netns/${P}-one already exists`);

    const name = spaces.track(`${P}-tmp`);
    Netns.create(name).close();
    expect(netnsExists(name)).toBe(true);
    Netns.remove(name);
    expect(netnsExists(name)).toBe(false);
    expect(() => Netns.remove(name)).toThrow(`remove netns ${name}: ENOENT`);
    Netns.remove(name, { missingOk: true });

    expect(() => Netns.create("../etc")).toThrow(TypeError);
    expect(() => Netns.open(`/var/run/netns/${P}-missing`)).toThrow(`open netns /var/run/netns/${P}-missing: ENOENT`);
  });

  test("a namespace made by ip netns add can be opened and removed by us", () => {
    const name = spaces.create("ipmade");
    const handle = Netns.open(`/var/run/netns/${name}`);
    try {
      expect(handle.run(currentInode)).toBe(fstatSync(handle.fd).ino);
    } finally {
      handle.close();
    }
    Netns.remove(name);
    expect(netnsExists(name)).toBe(false);
  });

  test("run enters the namespace and returns the function's value", () => {
    const seen = ns.run(() => {
      const netlink = Netlink.open();
      try {
        return { inode: currentInode(), links: netlink.links().map((link) => link.name) };
      } finally {
        netlink.close();
      }
    });
    expect(seen).toEqual({ inode: fstatSync(ns.fd).ino, links: ["lo"] });
    expect(currentInode()).toBe(home);
  });

  test("run nests, and each level returns to where it was", () => {
    const trail: number[] = [];
    ns.run(() => {
      trail.push(currentInode());
      other.run(() => trail.push(currentInode()));
      trail.push(currentInode());
    });
    trail.push(currentInode());
    expect(trail).toEqual([fstatSync(ns.fd).ino, fstatSync(other.fd).ino, fstatSync(ns.fd).ino, home]);
  });

  test("run switches back when the function throws", () => {
    expect(() =>
      ns.run(() => {
        throw new Error("boom inside");
      }),
    ).toThrow("boom inside");
    expect(currentInode()).toBe(home);
  });

  test("run rejects an async function, already switched back", async () => {
    expect(() => ns.run(async () => 1)).toThrow(TypeError);
    expect(() => ns.run(async () => 1)).toThrow(/must be synchronous/);
    expect(currentInode()).toBe(home);
    // A rejecting one must not also surface as an unhandled rejection.
    expect(() =>
      ns.run(async () => {
        throw new Error("late");
      }),
    ).toThrow(TypeError);
    await Bun.sleep(10);
    expect(currentInode()).toBe(home);
  });

  test("current and fromPid name the namespaces of this thread and of other processes", async () => {
    const current = Netns.current();
    const mine = Netns.fromPid(process.pid);
    handles.push(current, mine);
    expect(fstatSync(current.fd).ino).toBe(home);
    expect(fstatSync(mine.fd).ino).toBe(home);
    const inside = ns.run(() => Netns.current());
    handles.push(inside);
    expect(fstatSync(inside.fd).ino).toBe(fstatSync(ns.fd).ino);
    expect(inside.run(currentInode)).toBe(fstatSync(ns.fd).ino);

    const sleeper = spawnInNetns(`${P}-one`, ["sleep", "10"]);
    try {
      // ip netns exec replaces itself with sleep, so the pid ends up in the namespace.
      await waitFor("ip netns exec to enter", () => statSync(`/proc/${sleeper.pid}/ns/net`).ino === fstatSync(ns.fd).ino);
      const theirs = Netns.fromPid(sleeper.pid);
      handles.push(theirs);
      expect(fstatSync(theirs.fd).ino).toBe(fstatSync(ns.fd).ino);
    } finally {
      sleeper.kill();
    }
  });

  test("a closed handle refuses to run", () => {
    const handle = Netns.open(ns.path);
    handle.close();
    expect(() => handle.run(() => 1)).toThrow(/closed/);
  });

  test("sysctls are per namespace: written inside, invisible outside", () => {
    const hostForwarding = readSysctl("net.ipv4.ip_forward");
    writeSysctl("net.ipv4.ip_forward", 1, { netns: ns });
    expect(readSysctl("net.ipv4.ip_forward", { netns: ns })).toBe("1");
    expect(execInNetns(`${P}-one`, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.trim()).toBe("1");
    expect(readSysctl("net.ipv4.ip_forward", { netns: other })).toBe("0");
    expect(readSysctl("net.ipv4.ip_forward")).toBe(hostForwarding);

    writeSysctl("net/ipv4/conf/lo/rp_filter", "2", { netns: ns });
    expect(readSysctl("net.ipv4.conf.lo.rp_filter", { netns: ns })).toBe("2");
    expect(execInNetns(`${P}-one`, ["cat", "/proc/sys/net/ipv4/conf/lo/rp_filter"]).stdout.trim()).toBe("2");

    expect(() => readSysctl("net.ipv4.no_such_knob", { netns: ns })).toThrow(
      `read sysctl net.ipv4.no_such_knob in netns ${ns.path}: ENOENT`,
    );
    expect(() => writeSysctl("net.ipv4.ip_forward", "banana", { netns: ns })).toThrow(/EINVAL/);
    expect(currentInode()).toBe(home);
  });
});

test("sysctl keys map to /proc/sys paths and unsafe ones are refused", () => {
  expect(sysctlPath("net.ipv4.ip_forward")).toBe("/proc/sys/net/ipv4/ip_forward");
  expect(sysctlPath("net/ipv4/conf/eth0.100/rp_filter")).toBe("/proc/sys/net/ipv4/conf/eth0.100/rp_filter");
  expect(() => sysctlPath("net/../../etc/passwd")).toThrow(TypeError);
  expect(() => sysctlPath("net.ipv4 ip_forward")).toThrow(TypeError);
  expect(() => sysctlPath("")).toThrow(TypeError);
});
