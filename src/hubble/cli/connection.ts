/**
 * The server flags every hubble command shares (--server, --timeout, --request-timeout, TLS),
 * with upstream's defaults and HUBBLE_* environment variables, and the connection they make.
 */
import { readFileSync } from "node:fs";
import type { GrpcClient, TlsOptions } from "../client/grpc.ts";
import { UsageError, parseBool, type FlagKind } from "./args.ts";
import { parseGoDuration } from "../../duration.ts";

export const DEFAULT_SERVER = "localhost:4245";

export const SERVER_FLAGS: Record<string, FlagKind> = {
  server: "value",
  timeout: "value",
  "request-timeout": "value",
  tls: "bool",
  "tls-allow-insecure": "bool",
  "tls-ca-cert-files": "value",
  "tls-client-cert-file": "value",
  "tls-client-key-file": "value",
  "tls-server-name": "value",
  debug: "bool",
};

export const SERVER_SHORTS: Record<string, string> = { D: "debug" };

export class ServerSettings {
  server: string;
  dialTimeoutMs = 5000;
  requestTimeoutMs = 12000;
  tls = false;
  allowInsecure = false;
  caFiles: string[] = [];
  clientCert = "";
  clientKey = "";
  serverName = "";

  constructor(env: Record<string, string | undefined>) {
    this.server = env.HUBBLE_SERVER || DEFAULT_SERVER;
    // Viper's binding: flag foo-bar <- HUBBLE_FOO_BAR.
    for (const name of Object.keys(SERVER_FLAGS)) {
      if (name === "server") continue;
      const value = env[`HUBBLE_${name.toUpperCase().replaceAll("-", "_")}`];
      if (value) this.set(name, value);
    }
  }

  /** Applies one server flag; false if `name` is not one. */
  set(name: string, value: string): boolean {
    switch (name) {
      case "server":
        this.server = value;
        return true;
      case "timeout":
        this.dialTimeoutMs = durationMs(name, value);
        return true;
      case "request-timeout":
        this.requestTimeoutMs = durationMs(name, value);
        return true;
      case "tls":
        this.tls = parseBool(name, value);
        return true;
      case "tls-allow-insecure":
        this.allowInsecure = parseBool(name, value);
        return true;
      case "tls-ca-cert-files":
        this.caFiles.push(...value.split(",").filter((f) => f !== ""));
        return true;
      case "tls-client-cert-file":
        this.clientCert = value;
        return true;
      case "tls-client-key-file":
        this.clientKey = value;
        return true;
      case "tls-server-name":
        this.serverName = value;
        return true;
      case "debug":
        return true;
    }
    return false;
  }

  private tlsOptions(): TlsOptions | undefined {
    if (!this.tls && !this.server.startsWith("tls://")) return undefined;
    const read = (path: string, what: string) => {
      try {
        return readFileSync(path, "utf8");
      } catch (err) {
        throw new UsageError(`cannot load ${what} '${path}': ${(err as Error).message}`);
      }
    };
    const ca = this.caFiles.map((f) => {
      const pem = read(f, "cert");
      if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`cannot process cert '${f}': must be a PEM encoded certificate`);
      return pem;
    });
    const both = this.clientCert !== "" && this.clientKey !== "";
    return {
      ca,
      ...(both ? { cert: read(this.clientCert, "client certificate"), key: read(this.clientKey, "client key") } : {}),
      ...(this.serverName ? { serverName: this.serverName } : {}),
      allowInsecure: this.allowInsecure,
    };
  }

  /** Checks what can be checked before connecting (TLS files, the address). */
  async connect(): Promise<GrpcClient> {
    const tls = this.tlsOptions();
    const { GrpcClient, parseTarget } = await import("../client/grpc.ts");
    try {
      parseTarget(this.server, tls !== undefined);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    return GrpcClient.connect({ server: this.server, dialTimeoutMs: this.dialTimeoutMs, ...(tls ? { tls } : {}) });
  }
}

function durationMs(name: string, value: string): number {
  const ns = parseGoDuration(value);
  if (ns === undefined || ns <= 0) throw new UsageError(`invalid argument "${value}" for "--${name}" flag: not a positive duration (e.g. 5s, 1m)`);
  return ns / 1e6;
}
