/** The REST API over the agent's unix socket: routing, error bodies, latency, graceful stop. */
import { rmSync } from "node:fs";
import type { Logger } from "../../logging/index.ts";
import type { ApiLatencyHistogram } from "./metrics.ts";
import { apiError, errorResponse } from "./responses.ts";
import type { Router } from "./router.ts";
import { bindSocket, prepareSocketPath } from "./socket.ts";

/** Bodies are small JSON documents; anything bigger is a mistake or an attack. */
const MAX_BODY_BYTES = 1 << 20;
/** How long stop() lets requests in flight finish before it closes their connections. */
const STOP_GRACE_MS = 5000;

export interface ApiServerOptions {
  socketPath: string;
  socketGid: number;
  router: Router;
  metrics: ApiLatencyHistogram;
  log: Logger;
}

export interface ApiServer {
  readonly socketPath: string;
  /** Stops accepting, lets requests in flight finish, removes the socket. */
  stop(): Promise<void>;
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { socketPath, router, metrics, log } = options;
  await prepareSocketPath(socketPath);
  const server = bindSocket(socketPath, options.socketGid, () =>
    Bun.serve({
      unix: socketPath,
      maxRequestBodySize: MAX_BODY_BYTES,
      fetch: async (request) => {
        const started = performance.now();
        const url = new URL(request.url);
        let template = "unmatched";
        let response: Response;
        try {
          const match = router.match(request.method, url.pathname);
          if (match.found) {
            template = match.template;
            response = await match.handler(request, match.params, url);
          } else if (match.allow.length > 0) {
            response = apiError(405, `${request.method} is not allowed on ${url.pathname}; allowed: ${match.allow.join(", ")}`, { allow: match.allow.join(", ") });
          } else {
            response = apiError(404, `no such API path: ${url.pathname}`);
          }
        } catch (error) {
          response = errorResponse(error, log);
        }
        metrics.observe(request.method, template, response.status, (performance.now() - started) / 1000);
        log.debug(`${request.method} ${url.pathname}${url.search} -> ${response.status}`);
        return response;
      },
    }),
  );
  log.info(`serving the API on ${socketPath}`);
  return {
    socketPath,
    async stop() {
      const graceOver = Bun.sleep(STOP_GRACE_MS).then(() => server.stop(true));
      await Promise.race([server.stop(), graceOver]);
      rmSync(socketPath, { force: true });
    },
  };
}
