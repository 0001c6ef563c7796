import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ipam, IpamError } from "../../src/agent/ipam/index.ts";
import { Ipv4Pool } from "../../src/agent/ipam/pool.ts";
import { parseCidr as cidr } from "../../src/net/ipv4.ts";

function reasonOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof IpamError) return `${error.reason}: ${error.message}`;
    throw error;
  }
  throw new Error("did not throw");
}

const dirs: string[] = [];
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "agent-ipam-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("the pod pool", () => {
  test("hands out addresses in order after the router, skipping network, router and broadcast", () => {
    const pool = new Ipv4Pool(cidr("10.200.0.0/29"));
    expect(pool.routerAddress).toBe("10.200.0.1");
    const handed = ["a", "b", "c", "d", "e"].map((owner) => pool.allocate(owner));
    expect(handed).toEqual(["10.200.0.2", "10.200.0.3", "10.200.0.4", "10.200.0.5", "10.200.0.6"]);
    expect(pool.capacity).toBe(6);
    expect(pool.used).toBe(6);
    expect(pool.free).toBe(0);
  });

  test("a /30 holds exactly one pod; the next owner gets an exhaustion error naming the pool", () => {
    const pool = new Ipv4Pool(cidr("10.9.0.0/30"));
    expect(pool.allocate("first")).toBe("10.9.0.2");
    expect(reasonOf(() => pool.allocate("second"))).toBe(
      'exhausted: IPAM pool 10.9.0.0/30 is exhausted: all 1 pod addresses are allocated, none left for "second"',
    );
    expect(new IpamError("exhausted", "x").kind).toBe("exhausted");
  });

  test("the same owner gets its existing address again", () => {
    const pool = new Ipv4Pool(cidr("10.200.0.0/24"));
    const first = pool.allocate("c1:eth0");
    pool.allocate("c2:eth0");
    expect(pool.allocate("c1:eth0")).toBe(first);
    expect(pool.used).toBe(3);
  });

  test("released addresses rest: allocation goes round robin before reusing them", () => {
    const pool = new Ipv4Pool(cidr("10.200.0.0/29"));
    const a = pool.allocate("a");
    pool.allocate("b");
    expect(pool.release(a)).toBe("a");
    expect(pool.allocate("c")).toBe("10.200.0.4");
    for (const owner of ["d", "e", "f"]) pool.allocate(owner);
    expect(pool.addressOf("f")).toBe(a);
  });

  test("bad releases are distinct errors with clear messages", () => {
    const pool = new Ipv4Pool(cidr("10.200.0.0/24"));
    expect(reasonOf(() => pool.release("10.200.0.9"))).toBe("not-allocated: 10.200.0.9 is not allocated in IPAM pool 10.200.0.0/24");
    expect(reasonOf(() => pool.release("10.201.0.9"))).toBe("not-in-pool: 10.201.0.9 is not in IPAM pool 10.200.0.0/24");
    expect(reasonOf(() => pool.release("10.200.0"))).toBe('malformed: "10.200.0" is not an IPv4 address');
    expect(reasonOf(() => pool.release("10.200.0.1"))).toBe("reserved: 10.200.0.1 is reserved in IPAM pool 10.200.0.0/24: it is the router (gateway) address");
    expect(reasonOf(() => pool.release("10.200.0.0"))).toContain("it is the network address");
    expect(reasonOf(() => pool.release("10.200.0.255"))).toContain("it is the broadcast address");
    expect(new IpamError("not-allocated", "x").kind).toBe("not-found");
    expect(new IpamError("not-in-pool", "x").kind).toBe("invalid");
  });

  test("release by owner answers the address, or nothing when the owner holds none", () => {
    const pool = new Ipv4Pool(cidr("10.200.0.0/24"));
    const ip = pool.allocate("c1:eth0");
    expect(pool.releaseOwner("c1:eth0")).toBe(ip);
    expect(pool.releaseOwner("c1:eth0")).toBeUndefined();
    expect(pool.ownerOf(ip)).toBeUndefined();
  });

  test("owners must be plain non-empty strings, and not the router's name", () => {
    const pool = new Ipv4Pool(cidr("10.200.0.0/24"));
    expect(reasonOf(() => pool.allocate(""))).toStartWith("invalid-owner");
    expect(reasonOf(() => pool.allocate("a b"))).toStartWith("invalid-owner");
    expect(reasonOf(() => pool.allocate("router"))).toContain("reserved for the router");
  });

  test("allocations list the router first, then pods in address order", () => {
    const pool = new Ipv4Pool(cidr("10.200.0.0/24"));
    pool.allocate("b");
    pool.allocate("a");
    expect(pool.allocations()).toEqual([
      ["10.200.0.1", "router"],
      ["10.200.0.2", "b"],
      ["10.200.0.3", "a"],
    ]);
  });
});

describe("the persisted IPAM", () => {
  const range = cidr("10.200.0.0/29");

  test("persists every change before answering it: a line in the journal, the snapshot rewritten at the next start", () => {
    const dir = stateDir();
    const ipam = Ipam.open(range, dir);
    const ip = ipam.allocate("c1:eth0");
    const journal = () => readFileSync(join(dir, "ipam", "ipv4.journal"), "utf8");
    const snapshot = () => JSON.parse(readFileSync(join(dir, "ipam", "ipv4.json"), "utf8"));
    expect(journal()).toBe(`${JSON.stringify({ address: ip, owner: "c1:eth0", next: "10.200.0.3" })}\n`);
    expect(snapshot()).toEqual({ version: 2, range: "10.200.0.0/29", next: "10.200.0.2", allocations: {} });
    ipam.release(ip);
    expect(journal().split("\n")[1]).toBe(JSON.stringify({ address: ip, owner: null, next: "10.200.0.3" }));

    Ipam.open(range, dir).allocate("c2:eth0");
    expect(snapshot()).toEqual({ version: 2, range: "10.200.0.0/29", next: "10.200.0.3", allocations: {} });
    expect(journal()).toBe(`${JSON.stringify({ address: "10.200.0.3", owner: "c2:eth0", next: "10.200.0.4" })}\n`);
  });

  test("a state file of format version 1 (no journal) is read, and rewritten as version 2", () => {
    const dir = stateDir();
    mkdirSync(join(dir, "ipam"));
    writeFileSync(join(dir, "ipam", "ipv4.json"), JSON.stringify({ version: 1, range: "10.200.0.0/29", next: "10.200.0.4", allocations: { "10.200.0.3": "old:eth0" } }));
    const ipam = Ipam.open(range, dir);
    expect(ipam.ownerOf("10.200.0.3")).toBe("old:eth0");
    expect(ipam.allocate("new:eth0")).toBe("10.200.0.4");
    expect(JSON.parse(readFileSync(join(dir, "ipam", "ipv4.json"), "utf8")).version).toBe(2);
  });

  test("a journal line cut short by a crash was never acknowledged and is ignored; a bad complete line stops the agent", () => {
    const dir = stateDir();
    const ipam = Ipam.open(range, dir);
    const a = ipam.allocate("a");
    const journal = join(dir, "ipam", "ipv4.journal");
    writeFileSync(journal, `${readFileSync(journal, "utf8")}{"address":"10.200.0.3","owner":"b","next":"10.2`);
    const reopened = Ipam.open(range, dir);
    expect(reopened.ownerOf(a)).toBe("a");
    expect(reopened.ownerOf("10.200.0.3")).toBeUndefined();
    expect(reopened.status().used).toBe(2);
    // Reopening rewrote the snapshot and dropped the journal with its fragment.
    expect(readdirSync(join(dir, "ipam"))).toEqual(["ipv4.json"]);

    writeFileSync(journal, '{"address":"10.200.0.3","owner":"b","next":"10.200.0.4"}\n{"address":"nonsense"}\n');
    expect(() => Ipam.open(range, dir)).toThrow(/ipv4\.journal is unusable \(line 2 is not an IPAM change: "\{\\"address\\":\\"nonsense\\"\}"\)/);
    writeFileSync(journal, "");
    rmSync(join(dir, "ipam", "ipv4.json"));
    writeFileSync(journal, '{"address":"10.200.0.3","owner":"b","next":"10.200.0.4"}\n');
    expect(() => Ipam.open(range, dir)).toThrow(/1 changes without the snapshot/);
  });

  test("replaying lines the snapshot already holds changes nothing (a crash between the snapshot and the journal's removal)", () => {
    const dir = stateDir();
    const ipam = Ipam.open(range, dir);
    const a = ipam.allocate("a");
    ipam.release(a);
    ipam.allocate("b");
    const c = ipam.allocate("c");
    const journal = readFileSync(join(dir, "ipam", "ipv4.journal"), "utf8");
    // The next start writes the snapshot; put the journal back as if its removal never happened.
    Ipam.open(range, dir);
    writeFileSync(join(dir, "ipam", "ipv4.journal"), journal);
    const reopened = Ipam.open(range, dir);
    expect(reopened.status().allocations).toEqual(ipam.status().allocations);
    expect(reopened.allocate("d")).toBe(ipam.allocate("d"));
    expect(reopened.ownerOf(c)).toBe("c");
  });

  test("a change that cannot be appended hands nothing out, and the next one rewrites the snapshot", () => {
    const dir = stateDir();
    const ipam = Ipam.open(range, dir);
    ipam.allocate("a");
    // The journal's place is taken by a directory: appending fails.
    rmSync(join(dir, "ipam", "ipv4.journal"));
    mkdirSync(join(dir, "ipam", "ipv4.journal"));
    expect(() => ipam.allocate("b")).toThrow();
    expect(ipam.addressOf("b")).toBeUndefined();
    rmSync(join(dir, "ipam", "ipv4.journal"), { recursive: true });
    const c = ipam.allocate("c");
    expect(readdirSync(join(dir, "ipam"))).toEqual(["ipv4.json"]);
    expect(JSON.parse(readFileSync(join(dir, "ipam", "ipv4.json"), "utf8")).allocations).toEqual({ "10.200.0.2": "a", [c]: "c" });
    expect(Ipam.open(range, dir).ownerOf(c)).toBe("c");
  });

  test("a new allocator over the same state never re-issues a live address, and keeps the round robin", () => {
    const dir = stateDir();
    const first = Ipam.open(range, dir);
    const a = first.allocate("a");
    const b = first.allocate("b");
    first.release(a);

    const second = Ipam.open(range, dir);
    expect(second.ownerOf(b)).toBe("b");
    expect(second.ownerOf(a)).toBeUndefined();
    const c = second.allocate("c");
    expect([a, b]).not.toContain(c);
    expect(second.allocate("b")).toBe(b);
    expect(second.status()).toMatchObject({ cidr: "10.200.0.0/29", gateway: "10.200.0.1", used: 3, free: 3, capacity: 6 });
  });

  test("a failed write hands nothing out and changes nothing", () => {
    const dir = stateDir();
    const ipam = Ipam.open(range, dir);
    ipam.allocate("a");
    // The state directory turned into a file: the next write fails.
    rmSync(join(dir, "ipam"), { recursive: true });
    writeFileSync(join(dir, "ipam"), "");
    expect(() => ipam.allocate("b")).toThrow();
    expect(ipam.addressOf("b")).toBeUndefined();
    expect(ipam.status().used).toBe(2);
  });

  test("a torn temporary file from a crashed write is ignored and removed", () => {
    const dir = stateDir();
    const ipam = Ipam.open(range, dir);
    const a = ipam.allocate("a");
    const torn = join(dir, "ipam", `.ipv4.json.tmp-4242-7`);
    writeFileSync(torn, '{"version":1,"range":"10.200.0.0/29","allocations":{"10.200.0.3":');
    const reopened = Ipam.open(range, dir);
    expect(reopened.ownerOf(a)).toBe("a");
    expect(reopened.status().used).toBe(2);
    expect(readdirSync(join(dir, "ipam"))).toEqual(["ipv4.json"]);
  });

  test("a corrupt state file stops the agent rather than forgetting allocations", () => {
    const dir = stateDir();
    mkdirSync(join(dir, "ipam"));
    writeFileSync(join(dir, "ipam", "ipv4.json"), "{not json");
    expect(() => Ipam.open(range, dir)).toThrow(/ipv4\.json is unusable \(not JSON/);
  });

  test("allocations outside a changed range are refused, naming the old range", () => {
    const dir = stateDir();
    Ipam.open(range, dir).allocate("a");
    expect(() => Ipam.open(cidr("10.201.0.0/24"), dir)).toThrow(
      /written for 10\.200\.0\.0\/29\) does not fit --ipv4-range 10\.201\.0\.0\/24: 10\.200\.0\.2 is not in IPAM pool 10\.201\.0\.0\/24/,
    );
    // Widening the range keeps them.
    expect(Ipam.open(cidr("10.200.0.0/24"), dir).ownerOf("10.200.0.2")).toBe("a");
  });

  test("claim restores an owner's address and refuses another owner's", () => {
    const dir = stateDir();
    const ipam = Ipam.open(range, dir);
    ipam.claim("10.200.0.5", "x");
    expect(ipam.ownerOf("10.200.0.5")).toBe("x");
    expect(() => ipam.claim("10.200.0.5", "y")).toThrow('10.200.0.5 is allocated to "x", not "y"');
  });
});

describe("crash consistency", () => {
  test("an allocator killed with SIGKILL at arbitrary points never loses an address it handed out", async () => {
    const dir = stateDir();
    const range = "10.50.0.0/20";
    const handedOut = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      const child = Bun.spawn([process.execPath, join(import.meta.dir, "../helpers/agent-ipam-allocator.ts"), dir, range, `r${round}`], {
        stdout: "pipe",
        stderr: "pipe",
      });
      // Kill it some time after its first allocation (start-up alone can take longer on a busy machine).
      const reader = child.stdout.getReader();
      let output = "";
      while (!output.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        output += new TextDecoder().decode(value);
      }
      await Bun.sleep(20 + round * 70);
      child.kill("SIGKILL");
      await child.exited;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        output += new TextDecoder().decode(value);
      }
      const lines = output.split("\n").filter(Boolean);
      expect(lines.length).toBeGreaterThan(0);
      lines.forEach((line, i) => {
        const [ip, owner] = line.split(" ") as [string, string];
        // Odd ones were released right after (unless the kill came in between).
        if (i % 2 === 0) handedOut.set(ip, owner);
      });
      // Whatever was handed out and not released is in the state file.
      const ipam = Ipam.open(cidr(range), dir);
      for (const [ip, owner] of handedOut) expect(ipam.ownerOf(ip)).toBe(owner);
    }
    // A fresh allocator gives none of them to anybody else.
    const ipam = Ipam.open(cidr(range), dir);
    for (let i = 0; i < 50; i++) expect(handedOut.has(ipam.allocate(`fresh-${i}`))).toBe(false);
  }, 20_000);
});
