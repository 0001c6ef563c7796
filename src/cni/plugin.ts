/**
 * The CNI plugin's entry: reads CNI_* from the environment and the network config from stdin,
 * runs the command and answers on stdout exactly as the spec says — a result, or an error JSON
 * with a non-zero exit. Nothing escapes as a stack trace.
 */
import { assertCommandInVersion, CniError, CniErrorCode, CNI_VERSION_LATEST, SUPPORTED_VERSIONS, type CniCommand } from "./spec.ts";
import { readCommand, readEnvironment, type CniEnvironment } from "./env.ts";
import { decodeConfig, parseNetworkConfig, type NetworkConfig } from "./config.ts";
import { commandHandlers } from "./commands.ts";
import { VERSION } from "../version.ts";
import { mark, timingReport } from "./timing.ts";

export interface CniIo {
  env: Record<string, string | undefined>;
  readStdin: () => Promise<string>;
  writeStdout: (text: string) => void;
  writeStderr: (text: string) => void;
}

/** A command's handler: returns the JSON body to print on success. */
export type CniHandler = (env: CniEnvironment, config: NetworkConfig) => Promise<Record<string, unknown> | undefined>;

/** Handlers for commands beyond VERSION; a command without one is reported as unsupported. */
export type CniHandlers = Partial<Record<Exclude<CniCommand, "VERSION">, CniHandler>>;

export function versionResult(): Record<string, unknown> {
  return { cniVersion: CNI_VERSION_LATEST, supportedVersions: [...SUPPORTED_VERSIONS] };
}

export async function runCni(io: CniIo, handlers: CniHandlers): Promise<number> {
  let cniVersion = CNI_VERSION_LATEST;
  try {
    const command = readCommand(io.env);
    if (command === undefined) {
      io.writeStderr(`CNI plugin cilium-cni version ${VERSION}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`);
      return 0;
    }
    if (command === "VERSION") {
      io.writeStdout(`${JSON.stringify(versionResult())}\n`);
      return 0;
    }
    const env = readEnvironment(command, io.env);
    const stdin = await io.readStdin();
    mark("plugin: stdin read");
    const raw = decodeConfig(stdin);
    if (typeof raw.cniVersion === "string") cniVersion = raw.cniVersion;
    const config = parseNetworkConfig(raw);
    assertCommandInVersion(command, config.cniVersion);
    const handler = handlers[command];
    if (!handler) {
      throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_COMMAND ${command} is not supported by this plugin`);
    }
    const result = await handler(env, config);
    if (result !== undefined) io.writeStdout(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    const cniError =
      error instanceof CniError ? error : new CniError(CniErrorCode.IoFailure, `internal error: ${(error as Error)?.message ?? String(error)}`);
    io.writeStdout(`${JSON.stringify(cniError.toJSON(cniVersion))}\n`);
    return 1;
  }
}

/**
 * The process-level entry used by `cilium-cni` and `cilium cni`. Output goes through Bun.write
 * rather than process.stdout, whose set-up alone would triple the plugin's start-up time (and
 * node:tty is not imported to ask whether stdin is a terminal: a runtime always provides it).
 */
export async function main(): Promise<number> {
  mark("plugin: main");
  const pending: Promise<number>[] = [];
  const code = await runCni(
    {
      env: process.env,
      // Blocking, through libc-io's small dlopen: Bun.file(0).text() costs a fresh process
      // ~0.7 ms to start its I/O, and importing node:fs for readFileSync ~2 ms.
      readStdin: async () => {
        const { readToEnd } = await import("../datapath/libc-io.ts");
        return new TextDecoder().decode(readToEnd(0, "stdin", "wait"));
      },
      writeStdout: (text) => void pending.push(Bun.write(Bun.stdout, text)),
      writeStderr: (text) => void pending.push(Bun.write(Bun.stderr, text)),
    },
    commandHandlers,
  );
  mark("plugin: done");
  const timing = timingReport();
  if (timing) pending.push(Bun.write(Bun.stderr, timing));
  await Promise.all(pending);
  return code;
}
