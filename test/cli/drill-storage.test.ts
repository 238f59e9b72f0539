import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Target } from "../../src/storage/s3.ts";
import { listAll } from "../../src/storage/target.ts";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startCuttingProxy, startS3Server } from "../helpers/s3.ts";

// A drill whose download breaks off (a proxy that cuts every connection after 600 kB of answers): the target could
// not be read, which says nothing about the snapshot, so the drill stops without a record.
let s3: S3TestServer;
let proxy: Awaited<ReturnType<typeof startCuttingProxy>>;
let key: Awaited<ReturnType<typeof makeKey>>;
let direct: { config: string };
let cut: { config: string };

beforeAll(async () => {
  [s3, key] = await Promise.all([startS3Server(), makeKey()]);
  proxy = await startCuttingProxy(s3.endpoint, 600_000);
  const work = mkdtempSync(join(tmpdir(), "lifeboat-drill-storage-"));
  mkdirSync(join(work, "app"));
  const db = new DatabaseSync(join(work, "app", "app.db"));
  db.exec("create table blobs (b blob)");
  const insert = db.prepare("insert into blobs values (?)");
  for (let i = 0; i < 3; i++) insert.run(randomBytes(1024 * 1024));
  db.close();
  const project = (endpoint: string) =>
    writeProject({
      "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify({ ...s3.config("ds"), endpoint })} }, scratch: { directory: "${join(work, "scratch")}" } });
`,
      "jobs/app.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "app", source: { type: "sqlite", path: "${join(work, "app", "app.db")}", boundary: "app" }, targets: ["offsite"] });
`,
      "restore-drills/app.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "app", job: "app" });
`,
    });
  direct = project(s3.endpoint);
  cut = project(proxy.endpoint);
});

afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
});

describe("a drill whose download breaks off", () => {
  it("stops with a STORAGE error and writes no drill record", async () => {
    const env = { LIFEBOAT_IDENTITY_FILE: key.identityFile };
    const b = await runCli(["--config", direct.config, "backup", "app"], env);
    expect(b.status, b.stderr).toBe(0);
    const d = await runCli(["--config", cut.config, "--json", "drill", "app"], env);
    expect(d.status).toBe(1);
    expect(d.json).toMatchObject({
      ok: false,
      error: { code: "STORAGE", message: expect.stringMatching(/the download broke off after \d+ bytes/) },
    });
    const records = await listAll(new S3Target("offsite", s3.config("ds")), "app/drills/");
    expect(records).toEqual([]);
    // Through the direct endpoint the same snapshot drills and records a pass: the snapshot was fine all along.
    const ok = await runCli(["--config", direct.config, "drill", "app"], env);
    expect(ok.status, ok.stderr).toBe(0);
    expect(await listAll(new S3Target("offsite", s3.config("ds")), "app/drills/")).toHaveLength(1);
  });
});
