import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LifeboatError } from "../../src/errors.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { type S3TestServer, startCuttingProxy, startS3Server } from "../helpers/s3.ts";

// The embedded S3 server behind a proxy that cuts every connection after `cutAfter` bytes: a network that drops
// mid-download.
let s3: S3TestServer;
let proxy: Awaited<ReturnType<typeof startCuttingProxy>>;
const cutAfter = 600_000;
const body = randomBytes(3 * 1024 * 1024);

beforeAll(async () => {
  s3 = await startS3Server();
  await new S3Target("direct", s3.config()).put("big.bin", Readable.from([body]));
  proxy = await startCuttingProxy(s3.endpoint, cutAfter);
});
afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
});

describe("S3 target: a download that breaks off", () => {
  it("fails with a STORAGE error naming the target, the object and the bytes read, not a bare 'aborted'", async () => {
    const target = new S3Target("offsite", { ...s3.config(), endpoint: proxy.endpoint });
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
