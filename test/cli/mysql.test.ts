import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { interruptWhenSeen, runCli } from "../helpers/cli.ts";
import { adminUrl, createTestDatabase, type TestDatabase, withAdmin } from "../helpers/mysql.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// A MariaDB job end to end through the CLI: backup, drill, guarded restore.
let source: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { config: string };
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

async function counts(db: string): Promise<Record<string, number>> {
  return withAdmin(async (c) => {
    const [tables] = await c.query(
      "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
      [db],
    );
    const out: Record<string, number> = {};
    for (const { TABLE_NAME } of tables as { TABLE_NAME: string }[]) {
      const [r] = await c.query(`SELECT COUNT(*) AS n FROM \`${db}\`.\`${TABLE_NAME}\``);
      out[TABLE_NAME] = Number((r as { n: number }[])[0]?.n);
    }
    return out;
  });
}

beforeAll(async () => {
  [source, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  await withAdmin((c) =>
    // A binary collation: a restored database must keep it, or its routines compare strings differently.
    c.query(`ALTER DATABASE \`${source.name}\` COLLATE utf8mb4_bin;
             CREATE TABLE \`${source.name}\`.\`Order\` (id INT PRIMARY KEY AUTO_INCREMENT, total DECIMAL(10,2)) ENGINE=InnoDB;
             INSERT INTO \`${source.name}\`.\`Order\` (total) VALUES (1.50), (2.25), (3.00);
             CREATE TABLE \`${source.name}\`.\`select\` (x INT) ENGINE=InnoDB;`),
  );
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(s3.config("my"))} }, scratch: { mysql: "${adminUrl}" } });
`,
    "jobs/shop.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "shop", source: { type: "mysql", url: "${source.url}", boundary: "mariadb-host" }, targets: ["offsite"] });
`,
    "restore-drills/shop.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "shop", job: "shop", checks: { queries: [{ name: "orders", sql: "select count(*) from \`Order\`", equals: 3 }] } });
`,
    // Its own job name, so its scratch databases (lifeboat_drill_stall_…) are told apart from other files' drills.
    "jobs/stall.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "stall", source: { type: "mysql", url: "${source.url}", boundary: "mariadb-host" }, targets: ["offsite"] });
`,
    // A check that runs for minutes: the drill is still checking when it is interrupted.
    "restore-drills/stall.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "stall", job: "stall", checks: { queries: [{ name: "slow", sql: "select sleep(600)", equals: 0 }] } });
`,
  });
});

afterAll(async () => {
  await Promise.allSettled([source?.drop(), s3?.stop()]);
});

describe("mysql job through the CLI", () => {
  it("backs up and drills into a scratch database that is dropped afterwards", async () => {
    const b = await cli("--json", "backup", "shop");
    expect(b.status, b.stderr).toBe(0);
    const d = await cli("--json", "drill", "shop");
    expect(d.status, d.stderr + d.stdout).toBe(0);
    const rec = (d.json as { drills: { record: { verdict: string; checks: { kind: string }[]; scratch: { location: string } } }[] })
      .drills[0]!.record;
    expect(rec.verdict).toBe("pass");
    expect(rec.checks.map((c) => c.kind)).toEqual(["rowCounts", "query"]);
    // This drill's own scratch database: other test files drill jobs whose names also start with "shop".
    const scratch = rec.scratch.location.split("/").at(-1) as string;
    expect(scratch).toMatch(/^lifeboat_drill_shop_[0-9a-z_]+$/);
    const left = await withAdmin(
      async (c) => (await c.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [scratch]))[0],
    );
    expect(left).toEqual([]);
  });

  it("restores into a new database, and refuses one holding data without a person at a terminal", async () => {
    const fresh = await createTestDatabase();
    const busy = await createTestDatabase();
    try {
      await withAdmin((c) => c.query(`DROP DATABASE \`${fresh.name}\``));
      const r = await cli("restore", "shop", "--to", fresh.url);
      expect(r.status, r.stderr).toBe(0);
      expect(await counts(fresh.name)).toEqual({ Order: 3, select: 0 });
      const [collation] = await withAdmin(
        async (c) =>
          (
            await c.query({
              sql: "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
              values: [fresh.name],
              rowsAsArray: true,
            })
          )[0] as string[][],
      );
      expect(collation).toEqual(["utf8mb4_bin"]);
      await withAdmin((c) => c.query(`CREATE TABLE \`${busy.name}\`.keep (x INT); INSERT INTO \`${busy.name}\`.keep VALUES (7);`));
      const refused = await cli("restore", "shop", "--to", busy.url);
      expect(refused.status).toBe(3);
      expect(refused.stderr).toMatch(/refusing to overwrite/);
      expect(await counts(busy.name)).toEqual({ keep: 1 });
    } finally {
      await Promise.allSettled([fresh.drop(), busy.drop()]);
    }
  });

  it("counts a database holding only routines as holding data", async () => {
    const code = await createTestDatabase();
    try {
      await withAdmin((c) => c.query(`CREATE FUNCTION \`${code.name}\`.answer() RETURNS INT DETERMINISTIC RETURN 42`));
      const refused = await cli("restore", "shop", "--to", code.url);
      expect(refused.status, refused.stderr).toBe(3);
      expect(refused.stderr).toMatch(/refusing to overwrite .* it holds data/);
      const [left] = await withAdmin(async (c) => (await c.query(`SELECT \`${code.name}\`.answer() AS a`))[0] as { a: number }[]);
      expect(left?.a).toBe(42);
    } finally {
      await code.drop();
    }
  });

  it("drops the scratch database when the drill is interrupted with SIGTERM", async () => {
    const b = await cli("backup", "stall");
    expect(b.status, b.stderr).toBe(0);
    const scratches = () =>
      withAdmin(async (c) => {
        const [rows] = await c.query(
          "SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'lifeboat\\_drill\\_stall\\_%'",
        );
        return (rows as { s: string }[]).map((r) => r.s);
      });
    const started = Date.now();
    const { seen, result: r } = await interruptWhenSeen(
      ["--config", project.config, "drill", "stall"],
      { LIFEBOAT_IDENTITY_FILE: key.identityFile },
      async () => (await scratches()).length,
    );
    expect(seen).toBe(1);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/interrupted by SIGTERM/);
    expect(await scratches()).toEqual([]);
    // The sleeping check was stopped, not waited for.
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});
