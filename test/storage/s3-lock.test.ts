import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manifestSchema } from "../../src/catalog/manifest.ts";
import type { LoadedConfig } from "../../src/config/load.ts";
import { configSchema, jobSchema, type S3TargetConfig } from "../../src/config/schema.ts";
import { backupJob } from "../../src/pipeline/job.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { getBuffer, putBuffer } from "../../src/storage/target.ts";
import { makeKey } from "../helpers/age.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// s3rver ignores Object Lock, so what matters is what lifeboat asks for: a recording proxy sits between the SDK and
// s3rver and keeps every request's method, path and headers.

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

let s3: S3TestServer;
let proxy: Server;
let proxyEndpoint = "";
const requests: Recorded[] = [];

/** Forwards every request to s3rver unchanged (same path, headers and body) and records it. */
async function startProxy(upstream: string): Promise<Server> {
  const up = new URL(upstream);
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    const fwd = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    fwd.on("error", () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await startProxy(s3.endpoint);
  proxyEndpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
afterAll(async () => {
  proxy?.closeAllConnections();
  proxy?.close();
  await s3?.stop();
});

const locked = (prefix: string): S3TargetConfig => ({
  ...s3.config(prefix),
  endpoint: proxyEndpoint,
  objectLock: { mode: "COMPLIANCE", days: 30 },
});
/** Requests that create an object or an upload: PutObject and CreateMultipartUpload (not UploadPart, not Complete). */
const creates = (rs: Recorded[]) =>
  rs.filter((r) => (r.method === "PUT" && !r.url.includes("partNumber=")) || (r.method === "POST" && /[?&]uploads\b/.test(r.url)));
const writes = (rs: Recorded[]) => rs.filter((r) => r.method === "PUT");
const since = (n: number) => requests.slice(n);

describe("Object Lock on every write", () => {
  it("puts mode, retain-until and a CRC32 checksum on a single put and on every part of a multipart upload", async () => {
    const prefix = `lock-${randomBytes(3).toString("hex")}`;
    const target = new S3Target("offsite", locked(prefix));
    const start = requests.length;
    const id = "20261124T215300Z-3fa9";
    await putBuffer(target, `db/snapshots/${id}/manifest.json`, "{}");
    const big = randomBytes(12 * 1024 * 1024);
    await putBuffer(target, `db/snapshots/${id}/db.pgdump.zst.age`, big);
    const rs = since(start);
    expect(creates(rs)).toHaveLength(2); // the single put and CreateMultipartUpload
    expect(rs.filter((r) => r.url.includes("partNumber="))).toHaveLength(3);
    const until = new Date(Date.UTC(2026, 10, 24, 21, 53, 0) + 30 * 86_400_000);
    for (const r of creates(rs)) {
      expect(r.headers["x-amz-object-lock-mode"], r.url).toBe("COMPLIANCE");
      expect(new Date(String(r.headers["x-amz-object-lock-retain-until-date"])).getTime(), r.url).toBe(until.getTime());
    }
    const mpu = creates(rs).find((r) => r.method === "POST");
    expect(mpu?.headers["x-amz-checksum-algorithm"]).toBe("CRC32");
    for (const r of writes(rs)) expect(r.headers["x-amz-checksum-crc32"], `${r.method} ${r.url}`).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    expect((await getBuffer(target, `db/snapshots/${id}/db.pgdump.zst.age`)).equals(big)).toBe(true);
    await target.close();
  });

  it("leaves tombstones and doctor canaries unlocked, and a target without objectLock plain", async () => {
    const prefix = `lock-${randomBytes(3).toString("hex")}`;
    const target = new S3Target("offsite", locked(prefix));
    const plain = new S3Target("plain", { ...s3.config(prefix), endpoint: proxyEndpoint });
    const start = requests.length;
    await putBuffer(target, "db/tombstones/20261124T215300Z-3fa9.json", "{}");
    await putBuffer(target, ".lifeboat/doctor-abc", "x");
    await putBuffer(plain, "db/snapshots/20261124T215300Z-3fa9/manifest.json", "{}");
    for (const r of since(start)) {
      expect(r.headers["x-amz-object-lock-mode"]).toBeUndefined();
      expect(r.headers["x-amz-checksum-crc32"]).toBeUndefined();
    }
    await Promise.all([target.close(), plain.close()]);
  });
});

describe("a real backup to a locked target", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    const c = await db.client();
    await c.query("create table t (id int); insert into t select generate_series(1, 1000);");
    await c.end();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("locks every object it writes and records the retain-until date in the manifest", async () => {
    const key = await makeKey();
    const prefix = `backup-${randomBytes(3).toString("hex")}`;
    const loaded: LoadedConfig = {
      file: "/virtual/backup.config.ts",
      config: configSchema.parse({ encryption: { recipients: [key.recipient] }, targets: { offsite: locked(prefix) } }),
      jobs: new Map([
        [
          "db",
          {
            ...jobSchema.parse({ name: "db", source: { type: "postgres", url: db.url, boundary: "test:pg" }, targets: ["offsite"] }),
            file: "/virtual/jobs/db.ts",
          },
        ],
      ]),
      drills: new Map(),
    };
    const start = requests.length;
    const result = await backupJob(loaded, "db");
    expect(result.ok).toBe(true);
    const rs = since(start);
    expect(creates(rs).map((r) => r.url.replace(/\?.*/, "").split("/").pop())).toEqual(
      expect.arrayContaining(["db.pgdump.zst.age", "inventory.json.age", "manifest.json"]),
    );
    for (const r of creates(rs)) {
      expect(r.headers["x-amz-object-lock-mode"], r.url).toBe("COMPLIANCE");
      expect(r.headers["x-amz-object-lock-retain-until-date"], r.url).toBeDefined();
    }
    for (const r of writes(rs)) expect(r.headers["x-amz-checksum-crc32"], r.url).toBeDefined();
    const manifest = manifestSchema.parse(
      JSON.parse(
        (await getBuffer(new S3Target("offsite", s3.config(prefix)), `db/snapshots/${result.snapshotId}/manifest.json`)).toString(),
      ),
    );
    expect(manifest.lock?.mode).toBe("COMPLIANCE");
    const dates = new Set(creates(rs).map((r) => new Date(String(r.headers["x-amz-object-lock-retain-until-date"])).toISOString()));
    expect([...dates]).toEqual([manifest.lock?.retainUntil]);
  });
});
