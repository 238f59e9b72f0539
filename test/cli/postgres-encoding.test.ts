import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { adminUrl, createTestDatabase, type TestDatabase, withAdmin } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";

// A legacy SQL_ASCII database holding a byte that is not UTF-8: restored into a UTF8 database, the byte is stored
// unchecked and the restored database then fails on it ("invalid byte sequence for encoding UTF8").
let source: TestDatabase;
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { config: string };
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

async function column(url: string, sql: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // No conversion: the bytes as stored (a UTF8 client would refuse 0xe9).
    await c.query("set client_encoding to 'SQL_ASCII'");
    return (await c.query({ text: sql, rowMode: "array" })).rows.map((r) => r[0]);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  [source, key] = await Promise.all([
    createTestDatabase("lifeboat_test_ascii", "template template0 encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C'"),
    makeKey(),
  ]);
  const c = await source.client();
  await c.query("set client_encoding to 'SQL_ASCII'");
  await c.query("create table t (x text); insert into t values (E'caf\\xe9'), ('plain')");
  await c.end();
  const nas = mkdtempSync(join(tmpdir(), "lifeboat-encoding-nas-"));
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { nas: { type: "filesystem", path: "${nas}", boundary: "nas" } }, scratch: { postgres: "${adminUrl}" } });
`,
    "jobs/legacy.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "legacy", source: { type: "postgres", url: "${source.url}", boundary: "pg" }, targets: ["nas"] });
`,
    "restore-drills/legacy.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "legacy", job: "legacy", checks: { queries: [{ name: "reads its bytes", sql: "select count(*) from t where upper(x) <> ''", equals: 2 }] } });
`,
  });
});

afterAll(async () => {
  await source?.drop();
});

describe("a SQL_ASCII source database", () => {
  it("is drilled and restored into databases of its own encoding, which read its bytes back", async () => {
    const b = await cli("backup", "legacy");
    expect(b.status, b.stderr).toBe(0);
    const d = await cli("--json", "drill", "legacy");
    expect(d.status, d.stderr + d.stdout).toBe(0);

    const name = `lifeboat_test_ascii_restored_${Date.now()}`;
    const to = source.url.replace(source.name, name);
    try {
      const r = await cli("restore", "legacy", "--to", to);
      expect(r.status, r.stderr).toBe(0);
      const encoding = "select pg_encoding_to_char(encoding) from pg_database where datname = current_database()";
      expect(await column(to, encoding)).toEqual(["SQL_ASCII"]);
      const upper = "select upper(x) from t order by x";
      expect(await column(to, upper)).toEqual(await column(source.url, upper));
    } finally {
      await withAdmin((c) => c.query(`drop database if exists "${name}" with (force)`));
    }
  });
});
