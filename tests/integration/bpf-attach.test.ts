/**
 * Attaching programs for real: tc programs on a veth between two throwaway network namespaces
 * (tcx links and clsact filters), pinned links that outlive their object and get their program
 * replaced, and a cgroup program. Real TCP traffic must be counted while attached, not after.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Netlink } from "../../src/datapath/netlink/index.ts";
import { Netns } from "../../src/datapath/netns.ts";
import {
  attachCgroup,
  attachTc,
  BpfError,
  BpfMap,
  BpfObject,
  ClsactAttachment,
  listTcx,
  programInfo,
  setBpfLogger,
  struct,
  tcxSupported,
  TcxAttachment,
  u32,
  u64,
  type BpfLink,
  type TcAttachment,
} from "../../src/datapath/bpf/index.ts";
import { describePrivileged } from "../helpers/privileged.ts";

const id = process.pid % 1000;
const prefix = `tbpf${id}`;
const pinDir = `/sys/fs/bpf/${prefix}a`;
const nsA = `${prefix}a`;
const nsB = `${prefix}b`;
const vethA = `${prefix}va`;
const vethB = `${prefix}vb`;
const addressA = `10.248.${id % 250}.1`;
const addressB = `10.248.${id % 250}.2`;

const Index = u32;
const Traffic = struct({ packets: u64, bytes: u64 });
const INGRESS = 0;
const EGRESS = 1;
const CGROUP = 2;

function run(...argv: string[]): string {
  const result = Bun.spawnSync(argv, { stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString().trim()}`);
  return result.stdout.toString();
}

function ensureBpffs(): void {
  if (run("stat", "-f", "-c", "%T", "/sys/fs/bpf").trim() !== "bpf_fs") run("mount", "-t", "bpf", "bpf", "/sys/fs/bpf");
}

/** Runs `body` with this thread in namespace `name` (ifindexes and tc netlink are per namespace). */
function inNetns<T>(name: string, body: () => T): T {
  const netns = Netns.open(Netns.pathOf(name));
  try {
    return netns.run(body);
  } finally {
    netns.close();
  }
}

function ifindexIn(namespace: string, device: string): number {
  const netlink = Netlink.open({ netns: Netns.pathOf(namespace) });
  try {
    return netlink.link(device)!.index;
  } finally {
    netlink.close();
  }
}

/** TCP connection attempts from A to a closed port on B: SYN in, RST out, on B's veth. */
function tcpTraffic(attempts = 3): void {
  for (let i = 0; i < attempts; i++) {
    Bun.spawnSync(["ip", "netns", "exec", nsA, "nc", "-z", "-w", "1", addressB, "5000"]);
  }
}

function removeTopology(): void {
  for (const namespace of [nsA, nsB]) Netns.remove(namespace, { missingOk: true });
}

function cgroup2Root(): string | null {
  const line = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .find((entry) => entry.split(" ")[2] === "cgroup2");
  return line?.split(" ")[1] ?? null;
}

describePrivileged("attaching programs to interfaces and cgroups", () => {
  const objects: BpfObject[] = [];
  const attachments: Array<TcAttachment | BpfLink> = [];
  let ifindexB = 0;

  const load = (pinRoot: string) => {
    const bytes = readFileSync(join(import.meta.dir, "../../build/test-bpf/counter.o"));
    const object = BpfObject.open(bytes, { name: "counter", pinRoot });
    objects.push(object);
    object.load();
    return object;
  };
  const track = <T extends TcAttachment | BpfLink>(attachment: T): T => {
    attachments.push(attachment);
    return attachment;
  };
  const counts = (map: BpfMap<number, { packets: bigint; bytes: bigint }>) =>
    [INGRESS, EGRESS, CGROUP].map((index) => map.lookup(index)!.packets);

  beforeAll(() => {
    setBpfLogger(() => {});
    ensureBpffs();
    removeTopology();
    rmSync(pinDir, { recursive: true, force: true });
    mkdirSync(pinDir);
    // The topology is built with our own netlink: two namespaces joined by a veth.
    const namespaceA = Netns.create(nsA);
    const namespaceB = Netns.create(nsB);
    const netlinkA = Netlink.open({ netns: namespaceA });
    const netlinkB = Netlink.open({ netns: namespaceB });
    try {
      netlinkA.createVeth({ name: vethA, peerName: vethB, peerNetns: namespaceB });
      for (const [netlink, device, address] of [
        [netlinkA, vethA, addressA],
        [netlinkB, vethB, addressB],
      ] as const) {
        netlink.addAddress(device, `${address}/30`);
        netlink.setLinkUp(device);
        netlink.setLinkUp("lo");
      }
    } finally {
      for (const handle of [netlinkA, netlinkB, namespaceA, namespaceB]) handle.close();
    }
    ifindexB = ifindexIn(nsB, vethB);
  });

  afterAll(() => {
    for (const attachment of attachments) {
      try {
        if (attachment instanceof ClsactAttachment) inNetns(nsB, () => attachment.detach());
        else attachment.detach();
      } catch {
        // The namespace removal below takes the interface and its filters with it.
      }
    }
    for (const object of objects) object.close();
    removeTopology();
    rmSync(pinDir, { recursive: true, force: true });
    setBpfLogger(null);
  });

  test("this kernel has tcx", () => {
    expect(tcxSupported()).toBe(true);
  });

  for (const mode of ["tcx", "clsact"] as const) {
    test(`${mode}: traffic is counted while attached and not after detach`, () => {
      const counter = load(join(pinDir, mode));
      const traffic = new BpfMap(counter.map("traffic"), Index, Traffic);
      const ingress = track(inNetns(nsB, () => attachTc(counter.program("count_ingress"), ifindexB, "ingress", { mode })));
      const egress = track(inNetns(nsB, () => attachTc(counter.program("count_egress"), ifindexB, "egress", { mode })));
      expect([ingress.mode, egress.mode]).toEqual([mode, mode]);
      expect([ingress.ifindex, ingress.direction]).toEqual([ifindexB, "ingress"]);

      if (mode === "tcx") {
        expect(inNetns(nsB, () => listTcx(ifindexB, "ingress")).map((p) => p.name)).toEqual(["count_ingress"]);
      } else {
        expect(run("ip", "netns", "exec", nsB, "tc", "filter", "show", "dev", vethB, "ingress")).toContain("count_ingress");
      }

      tcpTraffic();
      const [inPackets, outPackets] = counts(traffic);
      expect(inPackets).toBeGreaterThanOrEqual(3n); // at least the SYNs
      expect(outPackets).toBeGreaterThanOrEqual(3n); // at least the RSTs
      expect(traffic.lookup(INGRESS)!.bytes).toBeGreaterThanOrEqual(3n * 54n);

      if (mode === "tcx") {
        ingress.detach();
        egress.detach();
        expect(inNetns(nsB, () => listTcx(ifindexB, "ingress"))).toEqual([]);
      } else {
        inNetns(nsB, () => {
          ingress.detach();
          egress.detach();
        });
        expect(run("ip", "netns", "exec", nsB, "tc", "filter", "show", "dev", vethB, "ingress")).not.toContain("count_ingress");
      }
      ingress.detach(); // idempotent
      const before = counts(traffic);
      tcpTraffic();
      expect(counts(traffic)).toEqual(before);
    });
  }

  test("clsact: a second filter at the same handle and priority needs replace", () => {
    const counter = load(join(pinDir, "clsact-replace"));
    inNetns(nsB, () => {
      const first = track(attachTc(counter.program("count_ingress"), ifindexB, "ingress", { mode: "clsact" }));
      expect(() => attachTc(counter.program("count_egress"), ifindexB, "ingress", { mode: "clsact" })).toThrow(/EEXIST/);
      const second = track(
        attachTc(counter.program("count_egress"), ifindexB, "ingress", { mode: "clsact", replace: true }),
      );
      expect(run("ip", "netns", "exec", nsB, "tc", "filter", "show", "dev", vethB, "ingress")).toContain("count_egress");
      second.detach();
      first.detach(); // already replaced and removed: not an error
    });
  });

  test("tcx: a pinned link keeps counting after its object is closed, and can get a new program", () => {
    const root = join(pinDir, "pinned");
    mkdirSync(root);
    const linkPath = join(pinDir, "ingress_link");
    const first = load(root);
    const attachment = inNetns(nsB, () =>
      attachTc(first.program("count_ingress"), ifindexB, "ingress", { mode: "tcx", pinPath: linkPath }),
    );
    expect(attachment.mode).toBe("tcx");
    attachment.close();
    first.close();

    const traffic = BpfMap.openPinned(join(root, "traffic"), Index, Traffic);
    try {
      tcpTraffic();
      expect(counts(traffic)[INGRESS]).toBeGreaterThanOrEqual(3n);

      // An agent restart: the link is pinned, so attaching again must replace, not add.
      const second = load(root);
      expect(() => attachTc(second.program("count_egress"), ifindexB, "ingress", { pinPath: linkPath })).toThrow(
        /a link is already pinned at/,
      );
      expect(() =>
        attachTc(second.program("count_egress"), ifindexB, "egress", { pinPath: linkPath, replace: true }),
      ).toThrow(new RegExp(`it is attached to tcx ingress of ifindex ${ifindexB}`));
      const replaced = track(
        attachTc(second.program("count_egress"), ifindexB, "ingress", { pinPath: linkPath, replace: true }),
      );
      expect(replaced).toBeInstanceOf(TcxAttachment);
      const link = (replaced as TcxAttachment).link;
      expect(link.info().programId).toBe(programInfo(second.program("count_egress").fd).id);
      expect(link.info().tcx).toEqual({ ifindex: ifindexB, attachType: 46 });
      expect(inNetns(nsB, () => listTcx(ifindexB, "ingress")).map((p) => p.name)).toEqual(["count_egress"]);

      // The replaced program counts ingress packets into the egress slot of the shared map.
      const before = counts(traffic);
      tcpTraffic();
      const after = counts(traffic);
      expect(after[INGRESS]).toBe(before[INGRESS]!);
      expect(after[EGRESS]! - before[EGRESS]!).toBeGreaterThanOrEqual(3n);

      replaced.detach();
      expect(existsSync(linkPath)).toBe(false);
      const stopped = counts(traffic);
      tcpTraffic();
      expect(counts(traffic)).toEqual(stopped);
    } finally {
      traffic.close();
    }
  });

  test("tcx: a pinned link whose interface was deleted gives way to a fresh attachment", () => {
    const counter = load(join(pinDir, "recreated"));
    const linkPath = join(pinDir, "recreated_link");
    const device = `${prefix}x0`;
    const addDevice = () => {
      run("ip", "-n", nsB, "link", "add", device, "type", "veth", "peer", "name", `${prefix}x1`);
      return ifindexIn(nsB, device);
    };
    const firstIfindex = addDevice();
    inNetns(nsB, () => attachTc(counter.program("count_ingress"), firstIfindex, "ingress", { pinPath: linkPath })).close();
    run("ip", "-n", nsB, "link", "del", device);

    const secondIfindex = addDevice();
    try {
      const attachment = track(
        inNetns(nsB, () =>
          attachTc(counter.program("count_ingress"), secondIfindex, "ingress", { pinPath: linkPath, replace: true }),
        ),
      );
      expect((attachment as TcxAttachment).link.info().tcx.ifindex).toBe(secondIfindex);
      expect(existsSync(linkPath)).toBe(true);
      attachment.detach();
      expect(existsSync(linkPath)).toBe(false);
    } finally {
      run("ip", "-n", nsB, "link", "del", device);
    }
  });

  test("attaching where the program does not fit fails with a BpfError", () => {
    const counter = load(join(pinDir, "misfit"));
    expect(() => attachTc(counter.program("count_cgroup_egress"), ifindexB, "ingress", { mode: "tcx" })).toThrow(BpfError);
    expect(() => attachTc(counter.program("count_ingress"), 999_999, "ingress", { mode: "tcx" })).toThrow(
      /attach program "count_ingress" to tcx ingress of ifindex 999999/,
    );
  });

  const cgroupRoot = cgroup2Root();
  test.skipIf(!cgroupRoot)("cgroup: egress of processes in the cgroup is counted while the link exists", () => {
    const counter = load(join(pinDir, "cgroup"));
    const traffic = new BpfMap(counter.map("traffic"), Index, Traffic);
    const cgroup = join(cgroupRoot!, prefix);
    mkdirSync(cgroup, { recursive: true });
    const trafficFromCgroup = () =>
      Bun.spawnSync([
        "sh",
        "-c",
        `echo $$ > ${cgroup}/cgroup.procs && exec ip netns exec ${nsA} nc -z -w 1 ${addressB} 5000`,
      ]);
    try {
      const link = track(attachCgroup(counter.program("count_cgroup_egress"), cgroup, "inet_egress"));
      trafficFromCgroup();
      const attached = counts(traffic)[CGROUP]!;
      expect(attached).toBeGreaterThanOrEqual(1n);
      link.detach();
      trafficFromCgroup();
      expect(counts(traffic)[CGROUP]).toBe(attached);
    } finally {
      rmdirSync(cgroup);
    }
  });
});
