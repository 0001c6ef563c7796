/**
 * A minimal gRPC client over node:http2 for the hubble CLI: unary and server-streaming calls,
 * plaintext or TLS, TCP or a unix socket. @grpc/grpc-js costs ~20 ms to import in a compiled
 * binary and under Bun its client sometimes loses error statuses; this reads the status itself,
 * from the trailers or from a trailers-only response.
 */
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, SecureClientSessionOptions } from "node:http2";
import { decodeMessage, encodeMessage } from "../proto/wire.ts";

/** grpc.codes */
export const GrpcStatus = { OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

const STATUS_NAMES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"];

export class GrpcError extends Error {
  override name = "GrpcError";
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    // Go's status error text, as the upstream CLI prints it.
    super(`rpc error: code = ${STATUS_NAMES[code] ?? `Code(${code})`} desc = ${details}`);
  }
}

export interface TlsOptions {
  /** PEM CA certificates; empty: the system's. */
  ca?: string[];
  cert?: string;
  key?: string;
  serverName?: string;
  allowInsecure?: boolean;
}

export interface ClientOptions {
  /** host:port, tls://host:port, unix:///path or unix:path */
  server: string;
  tls?: TlsOptions;
  /** Connection timeout. */
  dialTimeoutMs: number;
}

interface Target {
  authority: string;
  host?: string;
  port?: number;
  path?: string;
  tls: boolean;
}

/** Parses a gRPC target as the upstream CLI accepts it. */
export function parseTarget(server: string, forceTls: boolean): Target {
  if (server.startsWith("unix:")) {
    const path = server.startsWith("unix://") ? server.slice("unix://".length) : server.slice("unix:".length);
    if (!path.startsWith("/") && server.startsWith("unix://")) throw new Error(`invalid server address '${server}': unix:// needs an absolute path (unix:///path)`);
    if (path === "") throw new Error(`invalid server address '${server}': no socket path`);
    return { authority: "localhost", path, tls: forceTls };
  }
  let tls = forceTls;
  let hostPort = server;
  if (hostPort.startsWith("tls://")) {
    tls = true;
    hostPort = hostPort.slice("tls://".length);
  }
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+))(?::(\d+))?$/.exec(hostPort);
  if (!m) throw new Error(`invalid server address '${server}': expected host:port, tls://host:port or unix:///path`);
  const host = m[1] ?? m[2]!;
  const port = m[3] !== undefined ? Number(m[3]) : 443;
  if (port < 1 || port > 65535) throw new Error(`invalid server address '${server}': port out of range`);
  return { authority: `${host.includes(":") ? `[${host}]` : host}:${port}`, host, port, tls };
}

function grpcFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame[0] = 0;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, 5);
  return frame;
}

function statusOf(headers: IncomingHttpHeaders): GrpcError | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  const code = Number(raw);
  if (code === GrpcStatus.OK) return undefined;
  const message = headers["grpc-message"];
  let details = typeof message === "string" ? message : "";
  try {
    details = decodeURIComponent(details);
  } catch {
    // Not percent-encoded after all: show it as sent.
  }
  return new GrpcError(code, details);
}

/** Splits the length-prefixed messages of a gRPC response body as chunks arrive. */
class FrameReader {
  private pending: Buffer | undefined;

  constructor(private readonly onMessage: (payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 5) {
      if (buf[at] !== 0) throw new GrpcError(GrpcStatus.INTERNAL, "compressed messages are not supported");
      const len = buf.readUInt32BE(at + 1);
      if (buf.length - at - 5 < len) break;
      this.onMessage(buf.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    }
    this.pending = at === buf.length ? undefined : buf.subarray(at);
  }

  get idle(): boolean {
    return this.pending === undefined;
  }
}

export class GrpcClient {
  private constructor(
    private readonly session: ClientHttp2Session,
    private readonly target: Target,
    readonly server: string,
  ) {}

  /** Connects (HTTP/2 preface and settings exchanged) or fails naming the server. */
  static async connect(opts: ClientOptions): Promise<GrpcClient> {
    const target = parseTarget(opts.server, opts.tls !== undefined);
    const http2 = await import("node:http2");
    const sessionOpts: SecureClientSessionOptions & { path?: string } = {};
    if (target.path) sessionOpts.path = target.path;
    if (target.tls) {
      const t = opts.tls ?? {};
      if (t.ca && t.ca.length > 0) sessionOpts.ca = t.ca;
      if (t.cert) sessionOpts.cert = t.cert;
      if (t.key) sessionOpts.key = t.key;
      // SNI takes names only; an IP address is verified against the certificate's IP SANs.
      const sni = t.serverName || (target.host && !/^[\d.]+$|:/.test(target.host) ? target.host : undefined);
      if (sni) sessionOpts.servername = sni;
      sessionOpts.rejectUnauthorized = !t.allowInsecure;
      sessionOpts.ALPNProtocols = ["h2"];
    }
    const url = `${target.tls ? "https" : "http"}://${target.path ? "localhost" : target.authority}`;
    let session: ClientHttp2Session;
    try {
      session = http2.connect(url, sessionOpts);
    } catch (err) {
      throw new Error(`failed to connect to '${opts.server}': ${(err as Error).message}`);
    }
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        clearTimeout(timer);
        session.destroy();
        reject(new Error(`failed to connect to '${opts.server}': ${err.message}`));
      };
      const timer = setTimeout(() => fail(new Error(`no connection within ${opts.dialTimeoutMs} ms`)), opts.dialTimeoutMs);
      session.once("error", fail);
      session.once("connect", () => {
        clearTimeout(timer);
        session.off("error", fail);
        resolve();
      });
    });
    // A connection lost later fails the calls on it; the session itself must not throw.
    session.on("error", () => {});
    return new GrpcClient(session, target, opts.server);
  }

  private open(path: string, request: Uint8Array, timeoutMs?: number): ClientHttp2Stream {
    const headers: Record<string, string> = {
      ":method": "POST",
      ":path": path,
      ":authority": this.target.authority,
      "content-type": "application/grpc",
      te: "trailers",
    };
    if (timeoutMs !== undefined) headers["grpc-timeout"] = `${Math.max(1, Math.ceil(timeoutMs))}m`;
    const stream = this.session.request(headers, { endStream: false });
    stream.end(grpcFrame(request));
    return stream;
  }

  /**
   * Runs a call and delivers each response message; resolves when the server ends the call with
   * OK, rejects with its status (or the connection's failure) otherwise. `signal` cancels.
   */
  call(path: string, request: Uint8Array, onMessage: (payload: Buffer) => void, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      const stream = this.open(path, request, opts.timeoutMs);
      let status: GrpcError | null | undefined;
      let failure: Error | undefined;
      const reader = new FrameReader(onMessage);
      const timer =
        opts.timeoutMs !== undefined
          ? setTimeout(() => {
              failure = new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, "context deadline exceeded");
              stream.close();
            }, opts.timeoutMs)
          : undefined;
      const abort = () => {
        failure = new GrpcError(GrpcStatus.CANCELLED, "context canceled");
        stream.close();
      };
      opts.signal?.addEventListener("abort", abort);
      stream.on("response", (headers) => {
        // A trailers-only response carries the status in its headers.
        if (headers["grpc-status"] !== undefined) status = statusOf(headers) ?? null;
        else if (headers[":status"] !== 200) failure = new GrpcError(GrpcStatus.UNKNOWN, `unexpected HTTP status ${headers[":status"]}`);
      });
      stream.on("trailers", (trailers) => {
        status = statusOf(trailers) ?? null;
      });
      stream.on("data", (chunk: Buffer) => {
        try {
          reader.push(chunk);
        } catch (err) {
          failure = err as Error;
          stream.close();
        }
      });
      stream.on("error", (err: Error) => {
        failure ??= new GrpcError(GrpcStatus.UNAVAILABLE, `connection to '${this.server}' failed: ${err.message}`);
      });
      stream.on("close", () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", abort);
        if (failure) return reject(failure);
        if (status === undefined) return reject(new GrpcError(GrpcStatus.UNAVAILABLE, `connection to '${this.server}' closed before the call ended`));
        if (status !== null) return reject(status);
        if (!reader.idle) return reject(new GrpcError(GrpcStatus.INTERNAL, "response ended inside a message"));
        resolve();
      });
    });
  }

  /** A unary call with protobuf request and response of the given message types. */
  async unary<Res>(path: string, requestType: string, responseType: string, request: object, timeoutMs: number): Promise<Res> {
    let response: Res | undefined;
    await this.call(path, encodeMessage(requestType, request), (payload) => (response = decodeMessage<Res>(responseType, payload)), { timeoutMs });
    if (response === undefined) throw new GrpcError(GrpcStatus.INTERNAL, "no response message");
    return response;
  }

  close(): void {
    this.session.close();
  }
}
