import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { S3TargetConfig } from "../../src/config/schema.ts";
import { createBucket, startEmbeddedS3 } from "../../src/storage/embedded-s3.ts";
import { writeProject } from "../helpers/project.ts";
import { embeddedTargetConfig } from "../helpers/s3.ts";

/** A local HTTP server that records every request (webhooks, pings). */
export async function startReceiver(): Promise<{
  url: string;
  got: { method: string; path: string; body: string }[];
  close(): Promise<void>;
}> {
  const got: { method: string; path: string; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      got.push({ method: req.method ?? "", path: req.url ?? "", body });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    got,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** A free loopback port (for the metrics endpoint: port 0 means "off" in the config). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** An embedded S3 server that can be stopped and started again on the same port and directory. */
export async function restartableS3(): Promise<{
  config: (prefix: string) => S3TargetConfig;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}> {
  const directory = await mkdtemp(join(tmpdir(), "lifeboat-s3-"));
  let server = await startEmbeddedS3({ directory });
  const port = Number(new URL(server.endpoint).port);
  const bucket = `test-${randomBytes(4).toString("hex")}`;
  await createBucket(server.endpoint, bucket);
  let running = true;
  return {
    config: (prefix) => embeddedTargetConfig(server.endpoint, bucket, prefix),
    async stop() {
      if (running) await server.stop();
      running = false;
    },
    async start() {
      server = await startEmbeddedS3({ directory, port });
      running = true;
    },
    async destroy() {
      if (running) await server.stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A project for daemon tests: one config with a daemon block, and the given jobs and drills (name → object literal). */
export function daemonProject(opts: {
  recipient: string;
  target: S3TargetConfig;
  daemon?: Record<string, unknown>;
  webhooks?: string[];
  scratchPostgres?: string;
  jobs: Record<string, string>;
  drills?: Record<string, string>;
}): { dir: string; config: string } {
  const files: Record<string, string> = {
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: ["${opts.recipient}"] },
  targets: { offsite: ${JSON.stringify(opts.target)} },
  ${opts.scratchPostgres ? `scratch: { postgres: "${opts.scratchPostgres}" },` : ""}
  daemon: ${JSON.stringify({ metrics: { host: "127.0.0.1", port: 0 }, ...opts.daemon })},
  notifications: { webhooks: ${JSON.stringify(opts.webhooks ?? [])} },
});
`,
  };
  for (const [name, body] of Object.entries(opts.jobs))
    files[`jobs/${name}.ts`] = `import { defineJob } from "lifeboat";\nexport default defineJob(${body});\n`;
  for (const [name, body] of Object.entries(opts.drills ?? {}))
    files[`restore-drills/${name}.ts`] = `import { defineDrill } from "lifeboat";\nexport default defineDrill(${body});\n`;
  return writeProject(files);
}

/** Polls until check() returns a truthy value. */
export async function until<T>(check: () => T | Promise<T>, what: string, ms = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
