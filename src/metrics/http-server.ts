/**
 * The Prometheus scrape endpoint: GET /metrics answers the text exposition a render function
 * produces. Shared by the agent's metrics (--prometheus-serve-addr) and Hubble's
 * (--hubble-metrics-server); binding errors name the flag that chose the address.
 */
import { parseListenAddress } from "./listen-address.ts";

/** prom-client's Registry.PROMETHEUS_CONTENT_TYPE, without loading prom-client to know it. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface MetricsServerOptions {
  /** The flag the address came from ("--prometheus-serve-addr"), for error messages. */
  flag: string;
  /** "host:port" or ":port". */
  address: string;
  render(): Promise<string>;
  /** Told when a scrape fails (the scraper gets a 500). */
  onError?(error: unknown): void;
}

export interface MetricsServer {
  /** The port bound (the kernel's choice when the address asked for port 0). */
  readonly port: number;
  stop(): Promise<void>;
}

export class MetricsServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MetricsServerError";
  }
}

export function startMetricsServer({ flag, address, render, onError }: MetricsServerOptions): MetricsServer {
  const parsed = parseListenAddress(address);
  const what = `${flag} ${JSON.stringify(address)}`;
  if ("problem" in parsed) throw new MetricsServerError(`${what}: ${parsed.problem}`);
  const { hostname, port } = parsed.value;
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      ...(hostname === undefined ? {} : { hostname }),
      port,
      // Scrapes of a large node may take a while (map counting); never cut them off.
      idleTimeout: 0,
      fetch: async (request) => {
        const path = new URL(request.url).pathname;
        if (path !== "/metrics") return new Response("not found: metrics are at /metrics\n", { status: 404 });
        if (request.method !== "GET" && request.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
        try {
          return new Response(await render(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE } });
        } catch (error) {
          onError?.(error);
          return new Response(`collecting metrics failed: ${(error as Error).message}\n`, { status: 500 });
        }
      },
    });
  } catch (error) {
    throw new MetricsServerError(`${what}: ${bindProblem(error, hostname, port)}`);
  }
  return {
    port: server.port ?? port,
    stop: async () => {
      await server.stop(true);
    },
  };
}

function bindProblem(error: unknown, hostname: string | undefined, port: number): string {
  const code = (error as { code?: string }).code;
  if (code === "EADDRINUSE") return `port ${port} is already in use${hostname === undefined ? "" : ` on ${hostname}`}`;
  if (code === "EADDRNOTAVAIL") return `${hostname} is not an address of this host`;
  if (code === "EACCES") return `not allowed to listen on port ${port}`;
  return `cannot listen: ${(error as Error).message}`;
}
