import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError, messageOf } from "../errors.ts";
import type { Logger } from "./log.ts";
import type { DaemonMetrics } from "./metrics.ts";

/** A listening /metrics and /healthz endpoint. */
export interface HttpEndpoint {
  /** http://host:port */
  url: string;
  /** Stops listening and drops open connections (scrapers keep them alive). */
  close(): Promise<void>;
}

/**
 * Serves GET /metrics (Prometheus text from the daemon's own registry) and GET /healthz (200 "ok" while the
 * scheduler runs, 503 once it is stopping), nothing else. Rejects with a ConfigError naming daemon.metrics when the
 * address cannot be bound, so a port clash stops the daemon at start rather than leaving it unobservable.
 */
export async function startHttp(opts: {
  host: string;
  port: number;
  metrics: DaemonMetrics;
  healthy: () => boolean;
  log: Logger;
  configFile: string;
}): Promise<HttpEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      const ok = opts.healthy();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain; charset=utf-8" }).end(ok ? "ok\n" : "stopping\n");
      return;
    }
    if (path === "/metrics") {
      opts.metrics.text().then(
        (text) => res.writeHead(200, { "content-type": opts.metrics.contentType }).end(text),
        (err: unknown) => {
          opts.log.error("metrics.failed", { error: err });
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: try /metrics or /healthz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      reject(
        new ConfigError(`${opts.configFile}: daemon.metrics: cannot listen on ${opts.host}:${opts.port} (${messageOf(err)})`, {
          cause: err,
          hint: "choose a free port, or set daemon.metrics.port to 0 to turn the endpoint off",
        }),
      );
    });
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
