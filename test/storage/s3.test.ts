import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { S3TargetConfig } from "../../src/config/schema.ts";
import { LifeboatError, NotFoundError } from "../../src/errors.ts";
import { openTargetAs } from "../../src/storage/roles.ts";
import { S3Target, signsPayload } from "../../src/storage/s3.ts";
import { listAll, putBuffer } from "../../src/storage/target.ts";
import { describeTargetContract } from "../contracts/target.ts";
import { multipartLeftovers, type S3TestServer, startS3Server, storedETag } from "../helpers/s3.ts";

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

const prefix = () => `run-${randomBytes(4).toString("hex")}`;

describeTargetContract("s3 (embedded s3rver)", async () => {
  const config = server.config(prefix());
  return { target: new S3Target("offsite", config), cleanup: async () => {}, leftovers: () => multipartLeftovers(config) };
});

// The same contract against a real S3-compatible endpoint, when one is given.
const env = process.env;
const real =
  env.LIFEBOAT_TEST_S3_ENDPOINT && env.LIFEBOAT_TEST_S3_BUCKET && env.LIFEBOAT_TEST_S3_ACCESS_KEY && env.LIFEBOAT_TEST_S3_SECRET_KEY;
describe.runIf(real)("real S3 endpoint", () => {
  describeTargetContract(`s3 (${env.LIFEBOAT_TEST_S3_ENDPOINT})`, async () => {
    const config: S3TargetConfig = {
      type: "s3",
      bucket: env.LIFEBOAT_TEST_S3_BUCKET ?? "",
      region: env.LIFEBOAT_TEST_S3_REGION ?? "us-east-1",
      prefix: `lifeboat-test/${prefix()}`,
      endpoint: env.LIFEBOAT_TEST_S3_ENDPOINT,
      forcePathStyle: true,
      credentials: { accessKeyId: env.LIFEBOAT_TEST_S3_ACCESS_KEY ?? "", secretAccessKey: env.LIFEBOAT_TEST_S3_SECRET_KEY ?? "" },
      partSizeMiB: 5,
      queueSize: 4,
      boundary: "test:real-s3",
      roles: {},
      requireImmutable: false,
    };
    const target = new S3Target("real", config);
    const sweeper = new S3Target("real", config);
    const cleanup = async () => {
      for (const o of await listAll(sweeper, "")) await sweeper.remove(o.key);
      await sweeper.close();
    };
    return { target, cleanup, leftovers: () => multipartLeftovers(config) };
  });
});

describe("S3Target", () => {
  it("names the target and the endpoint when the endpoint is unreachable", async () => {
    const target = new S3Target("offsite", { ...server.config(), endpoint: "http://127.0.0.1:1" });
    for (const attempt of [() => target.head("a"), () => putBuffer(target, "a", "x"), () => listAll(target, "")]) {
      const err = (await attempt().catch((e: unknown) => e)) as LifeboatError;
      expect(err).toBeInstanceOf(LifeboatError);
      expect(err.message).toMatch(/^target "offsite": cannot reach http:\/\/127\.0\.0\.1:1\/? \(.*ECONNREFUSED.*\)$/);
      expect(err.hint).toMatch(/endpoint/);
    }
    await target.close();
  });

  it("says which bucket is missing, and does not call it a missing key", async () => {
    const target = new S3Target("offsite", { ...server.config(), bucket: `missing-${randomBytes(4).toString("hex")}` });
    for (const attempt of [() => putBuffer(target, "a", "x"), () => target.get("a"), () => listAll(target, "")]) {
      const err = (await attempt().catch((e: unknown) => e)) as LifeboatError;
      expect(err).not.toBeInstanceOf(NotFoundError);
      expect(err.message).toMatch(/^target "offsite": bucket "missing-[0-9a-f]+" not found$/);
      expect(err.hint).toMatch(/bucket name and region/);
    }
    await target.close();
  });

  it("explains refused credentials without printing the secret", async () => {
    // A stand-in server that refuses everything, as S3 does for a wrong key (s3rver does not check V4 signatures).
    const refuser = createServer((_req, res) => {
      res.writeHead(403, { "content-type": "application/xml" });
      res.end("<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>");
    });
    await new Promise<void>((resolve) => refuser.listen(0, "127.0.0.1", resolve));
    const { port } = refuser.address() as AddressInfo;
    const config = {
      ...server.config(),
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: "AKID", secretAccessKey: "very-secret-value" },
    };
    const target = new S3Target("offsite", config);
    for (const attempt of [() => target.get("a"), () => putBuffer(target, "a", "x"), () => target.head("a")]) {
      const err = (await attempt().catch((e: unknown) => e)) as LifeboatError;
      expect(err).toBeInstanceOf(LifeboatError);
      expect(err.message).toMatch(/^target "offsite": .* in bucket "test-[0-9a-f]+": .*(secret access key does not match|access denied)/);
      expect(err.hint).toMatch(/accessKeyId and secretAccessKey/);
      expect(`${err.message} ${err.hint}`).not.toContain("very-secret-value");
    }
    await target.close();
    refuser.close();
  });

  it("fails a put that a non-S3 server answered with 200 and no ETag", async () => {
    // A web server or proxy at the endpoint's address that answers everything with a page.
    const page = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<html><body>welcome</body></html>");
      });
    });
    await new Promise<void>((resolve) => page.listen(0, "127.0.0.1", resolve));
    const { port } = page.address() as AddressInfo;
    const target = new S3Target("offsite", { ...server.config(), endpoint: `http://127.0.0.1:${port}` });
    const err = (await putBuffer(target, "job/manifest.json", "{}").catch((e: unknown) => e)) as LifeboatError;
    expect(err).toBeInstanceOf(LifeboatError);
    expect(err.message).toMatch(/^target "offsite": .*without an ETag, so nothing was stored/);
    // Readers too: its 200 page is no empty listing ("no snapshots").
    const listed = (await listAll(target, "job/").catch((e: unknown) => e)) as LifeboatError;
    expect(listed).toBeInstanceOf(LifeboatError);
    expect(listed.message).toBe(`target "offsite": list "job/": the server's answer is not an S3 listing`);
    expect(listed.hint).toMatch(/S3-compatible server/);
    await target.close();
    page.close();
  });

  it("a caller's idle timeout (doctor's) fails a request to a server that never answers in that time", async () => {
    const silent = createNetServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    const target = openTargetAs("offsite", { ...server.config(), endpoint: `http://127.0.0.1:${port}` }, "reader", { idleTimeoutMs: 500 });
    const started = Date.now();
    const err = (await listAll(target, "job/").catch((e: unknown) => e)) as LifeboatError;
    expect(err).toBeInstanceOf(LifeboatError);
    expect(err.message).toMatch(/^target "offsite": cannot reach http:\/\/127\.0\.0\.1:\d+ \(.*timed out/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await target.close?.();
    silent.close();
  });

  it.each([
    ["text/plain", "not found"],
    ["text/html", "<html><body><h1>404</h1></body></html>"],
    ["text/plain", ""],
  ])("names the HTTP status and the endpoint when a non-S3 server answers 404 (%s, %j)", async (type, body) => {
    const page = createServer((req, res) => {
      req.resume();
      res.writeHead(404, { "content-type": type });
      res.end(body);
    });
    await new Promise<void>((resolve) => page.listen(0, "127.0.0.1", resolve));
    const { port } = page.address() as AddressInfo;
    const target = new S3Target("offsite", { ...server.config(), endpoint: `http://127.0.0.1:${port}` });
    const err = (await listAll(target, "job/").catch((e: unknown) => e)) as LifeboatError;
    expect(err).toBeInstanceOf(LifeboatError);
    expect(err.message).toMatch(new RegExp(`HTTP 404 from http://127\\.0\\.0\\.1:${port}, not an S3 answer`));
    expect(err.hint).toMatch(/S3 API's address/);
    await target.close();
    page.close();
  });

  it("stores keys under the normalized prefix and lists them without it", async () => {
    const p = prefix();
    const target = new S3Target("offsite", server.config(`/${p}/nested/`));
    const whole = new S3Target("whole", server.config(""));
    await putBuffer(target, "job/manifest.json", "{}");
    expect((await listAll(target, "")).map((o) => o.key)).toEqual(["job/manifest.json"]);
    expect((await listAll(whole, `${p}/`)).map((o) => o.key)).toEqual([`${p}/nested/job/manifest.json`]);
    await Promise.all([target.close(), whole.close()]);
  });

  it("doubles the part size as an upload grows, and the object reads back whole", async () => {
    const config = server.config(prefix());
    // Doubling after 2 parts' worth (1,500 by default) shows the schedule at test sizes: 5, 5, 10, 20, then the rest.
    const target = new S3Target("offsite", config, { growthParts: 2 });
    const MiB = 1024 * 1024;
    const body = randomBytes(45 * MiB + 123);
    await putBuffer(target, "big.bin", body);
    const parts: Buffer[] = [];
    let start = 0;
    for (const mib of [5, 5, 10, 20]) {
      parts.push(body.subarray(start, start + mib * MiB));
      start += mib * MiB;
    }
    parts.push(body.subarray(start));
    const md5s = Buffer.concat(parts.map((p) => createHash("md5").update(p).digest()));
    expect(await storedETag(config, "big.bin")).toBe(`${createHash("md5").update(md5s).digest("hex")}-5`);
    const back = createHash("sha256");
    for await (const chunk of await target.get("big.bin")) back.update(chunk as Buffer);
    expect(back.digest("hex")).toBe(createHash("sha256").update(body).digest("hex"));
    await target.close();
  });

  it("signs object bodies only on plain HTTP to another host", async () => {
    expect(signsPayload("http://minio.lan:9000")).toBe(true);
    expect(signsPayload("http://10.0.0.5:9000")).toBe(true);
    expect(signsPayload("http://127.example.com")).toBe(true);
    expect(signsPayload(undefined)).toBe(false); // AWS, over HTTPS
    expect(signsPayload("https://s3.eu-central-003.backblazeb2.com")).toBe(false);
    expect(signsPayload("http://127.0.0.1:9000")).toBe(false);
    expect(signsPayload("http://localhost:9000")).toBe(false);
    expect(signsPayload("http://[::1]:9000")).toBe(false);

    // On the wire: a loopback server that records what the SDK sends.
    const seen: { method?: string; sha?: string | string[] }[] = [];
    const recorder = createServer((req, res) => {
      seen.push({ method: req.method, sha: req.headers["x-amz-content-sha256"] });
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"' });
        res.end();
      });
    });
    await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
    const { port } = recorder.address() as AddressInfo;
    const target = new S3Target("offsite", { ...server.config(), endpoint: `http://127.0.0.1:${port}` });
    await putBuffer(target, "a", "some bytes");
    expect(seen).toEqual([{ method: "PUT", sha: "UNSIGNED-PAYLOAD" }]);
    await target.close();
    recorder.close();
  });
});
