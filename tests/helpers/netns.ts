/**
 * Throwaway named network namespaces for privileged tests, made and inspected with iproute2 so
 * that the checks stay independent of the code under test (src/datapath/netns.ts, netlink).
 *
 * Name everything with uniquePrefix() so suites running at the same time never collide, keep
 * all interfaces inside namespaces you created, and call removeAll() in afterAll: deleting a
 * namespace also destroys the interfaces in it (a veth goes when either end's namespace does).
 */
import type { Subprocess } from "bun";

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** "tnl123": a short tag plus pid % 1000, leaving room in 15-byte interface names. */
export function uniquePrefix(tag: string): string {
  return `${tag}${process.pid % 1000}`;
}

/** Runs a command to completion; throws with its stderr when it fails, unless allowFailure. */
export function run(argv: string[], options: { stdin?: string; allowFailure?: boolean; timeoutMs?: number } = {}): CommandResult {
  const result = Bun.spawnSync(argv, {
    stdin: options.stdin === undefined ? "ignore" : Buffer.from(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
    timeout: options.timeoutMs ?? 10_000,
  });
  const outcome = {
    exitCode: result.exitCode ?? -1,
    stdout: result.stdout.toString(),
    stderr: result.stderr.toString(),
  };
  if (outcome.exitCode !== 0 && !options.allowFailure) {
    throw new Error(`${argv.join(" ")} exited ${outcome.exitCode}: ${outcome.stderr.trim()}`);
  }
  return outcome;
}

/** `ip -j [-n netns] ARGS...`, parsed. */
export function ipJson<T = unknown>(args: string[], netns?: string): T {
  const namespace = netns === undefined ? [] : ["-n", netns];
  const { stdout } = run(["ip", "-j", ...namespace, ...args]);
  return JSON.parse(stdout.trim() || "[]") as T;
}

export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

export function netnsExists(name: string): boolean {
  return run(["ip", "netns", "list"]).stdout.split("\n").some((line) => line.split(" ")[0] === name);
}

/** Runs a command inside a namespace (`ip netns exec`) to completion. */
export function execInNetns(
  name: string,
  argv: string[],
  options: { stdin?: string; allowFailure?: boolean; timeoutMs?: number } = {},
): CommandResult {
  return run(["ip", "netns", "exec", name, ...argv], options);
}

/** Starts a command inside a namespace in the background, stdout and stderr piped. */
export function spawnInNetns(name: string, argv: string[]): Subprocess<"ignore", "pipe", "pipe"> {
  return Bun.spawn(["ip", "netns", "exec", name, ...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
}

/** The namespaces of one suite, all named PREFIX-SUFFIX, removed together. */
export class TestNamespaces {
  private readonly names = new Set<string>();

  constructor(readonly prefix: string) {}

  /** Creates PREFIX-SUFFIX, first removing a leftover of a crashed earlier run with the same pid. */
  create(suffix: string): string {
    const name = `${this.prefix}-${suffix}`;
    run(["ip", "netns", "del", name], { allowFailure: true });
    run(["ip", "netns", "add", name]);
    this.names.add(name);
    return name;
  }

  /** Takes responsibility for removing a namespace made some other way (e.g. by the code under test). */
  track(name: string): string {
    this.names.add(name);
    return name;
  }

  /** Removes every namespace of this suite; never throws, so it is safe in afterAll/finally. */
  removeAll(): void {
    for (const name of this.names) run(["ip", "netns", "del", name], { allowFailure: true });
    this.names.clear();
  }
}

/** Polls until `check` holds, or throws after timeoutMs. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}
