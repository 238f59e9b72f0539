import { randomBytes } from "node:crypto";
import { createConnection, createServer, type Server } from "node:net";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LifeboatError } from "../../src/errors.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// A TCP proxy in front of the embedded S3 server that cuts every connection once it has passed `cutAfter` bytes of
// the server's answers: a network that drops mid-download.
let s3: S3TestServer;
let proxy: Server;
let proxyEndpoint: string;
const cutAfter = 600_000;
const body = randomBytes(3 * 1024 * 1024);

beforeAll(async () => {
  s3 = await startS3Server();
  await new S3Target("direct", s3.config()).put("big.bin", Readable.from([body]));
  const upstream = new URL(s3.endpoint);
  proxy = createServer((client) => {
    const server = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
    let passed = 0;
    client.pipe(server);
    server.on("data", (chunk: Buffer) => {
      passed += chunk.length;
      if (passed > cutAfter) {
        client.destroy();
        server.destroy();
      } else client.write(chunk);
    });
    client.on("error", () => server.destroy());
    server.on("error", () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const address = proxy.address();
  proxyEndpoint = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});
afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
  await s3?.stop();
});

describe("S3 target: a download that breaks off", () => {
  it("fails with a STORAGE error naming the target, the object and the bytes read, not a bare 'aborted'", async () => {
    const target = new S3Target("offsite", { ...s3.config(), endpoint: proxyEndpoint });
    const stream = await target.get("big.bin");
    let read = 0;
    const err = await (async () => {
      for await (const c of stream) read += (c as Buffer).length;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    const e = err as LifeboatError;
    expect(e.code).toBe("STORAGE");
    expect(e.message).toMatch(new RegExp(`^target "offsite": get "big\\.bin": the download broke off after ${read} bytes \\(.+\\)$`));
    expect(read).toBeLessThan(body.length);
    expect(e.hint).toMatch(/says nothing about the snapshot's integrity: run the command again/);
  });
});
