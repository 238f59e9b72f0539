import { writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import type { LoadedJob } from "../../src/config/load.ts";
import { jobSchema } from "../../src/config/schema.ts";
import { checkSource } from "../../src/safety/audit-sources.ts";
import { adminUrl, createTestDatabase } from "../helpers/mysql.ts";

const job = (source: Record<string, unknown>): LoadedJob =>
  ({ ...jobSchema.parse({ name: "j", source: { boundary: "b", ...source }, targets: ["t"] }), file: "jobs/j.ts" }) as LoadedJob;

describe("doctor's source checks", () => {
  it("MySQL: logs in and finds the job's databases, so a wrong password or database shows before a backup", async () => {
    const db = await createTestDatabase();
    try {
      expect(await checkSource(job({ type: "mysql", url: db.url }))).toMatchObject({ status: "ok" });
      const missing = await checkSource(job({ type: "mysql", url: `${adminUrl.replace(/\/$/, "")}/lifeboat_no_such_db_x` }));
      expect(missing).toMatchObject({ status: "failed" });
      expect(missing.detail).toMatch(/lifeboat_no_such_db_x/);
      const u = new URL(db.url);
      u.username = "lifeboat_nobody";
      u.password = "wrong-secret";
      const denied = await checkSource(job({ type: "mysql", url: u.href }));
      expect(denied.status).toBe("failed");
      expect(denied.detail).not.toContain("wrong-secret");
    } finally {
      await db.drop();
    }
  });

  it("SQLite: a file that is not a SQLite database fails", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lifeboat-doctor-"));
    const good = join(dir, "app.db");
    new DatabaseSync(good).exec("create table t (x)");
    expect(await checkSource(job({ type: "sqlite", path: good }))).toMatchObject({ status: "ok" });
    const bad = join(dir, "dump.sql");
    writeFileSync(bad, "create table t (x);\n");
    const r = await checkSource(job({ type: "sqlite", path: bad }));
    expect(r).toMatchObject({ status: "failed" });
    expect(r.detail).toMatch(/is not a SQLite database/);
  });
});
