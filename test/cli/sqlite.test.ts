import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { interruptWhenSeen, runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// A SQLite job end to end through the CLI: no database server at all.
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let work: string;
let project: { config: string };
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

function counts(path: string): Record<string, number> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const tables = db.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name").all() as {
      name: string;
    }[];
    return Object.fromEntries(
      tables.map((t) => [
        t.name,
        Number((db.prepare(`select count(*) as n from "${t.name.replace(/"/g, '""')}"`).get() as { n: number }).n),
      ]),
    );
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  [s3, key] = await Promise.all([startS3Server(), makeKey()]);
  work = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-cli-"));
  mkdirSync(join(work, "app"));
  const db = new DatabaseSync(join(work, "app", "app.db"));
  db.exec(`pragma journal_mode = wal;
    create table notes (id integer primary key, body text);
    create table "Tags" (name text);
    with recursive g(n) as (select 1 union all select n + 1 from g where n < 3000) insert into notes (body) select 'note ' || n from g;
    insert into "Tags" values ('a'), ('b');`);
  db.close();
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(s3.config("sq"))} }, scratch: { directory: "${join(work, "scratch")}" } });
`,
    "jobs/notes.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "notes", source: { type: "sqlite", path: "${join(work, "app", "app.db")}", boundary: "app-host" }, targets: ["offsite"] });
`,
    "restore-drills/notes.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "notes", job: "notes", checks: { queries: [{ name: "notes", sql: "select count(*) from notes", equals: 3000 }] } });
`,
    // A query that runs for minutes: the drill is still checking when it is interrupted.
    "restore-drills/notes-slow.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "notes-slow", job: "notes", checks: { queries: [{ name: "slow", sql: "with recursive c(x) as (select 1 union all select x + 1 from c where x < 2000000000) select count(*) from c", min: 1 }] } });
`,
  });
});

afterAll(async () => {
  await s3?.stop();
});

describe("sqlite job through the CLI", () => {
  it("backs up, drills (integrity, counts, query) and leaves no scratch behind", async () => {
    const b = await cli("backup", "notes");
    expect(b.status, b.stderr).toBe(0);
    const d = await cli("--json", "drill", "notes");
    expect(d.status, d.stderr).toBe(0);
    const rec = (d.json as { drills: { record: { verdict: string; checks: { kind: string }[] } }[] }).drills[0]!.record;
    expect(rec.verdict).toBe("pass");
    expect(rec.checks.map((c) => c.kind).sort()).toEqual(["integrity", "query", "rowCounts"]);
    expect(readdirSync(join(work, "scratch")).filter((f) => f.startsWith("lifeboat_drill"))).toEqual([]);
  });

  it("restores into a new file, and refuses to replace a file holding data without a person at a terminal", async () => {
    const dest = join(work, "restored.db");
    const r = await cli("restore", "notes", "--to", dest);
    expect(r.status, r.stderr).toBe(0);
    expect(counts(dest)).toEqual({ Tags: 2, notes: 3000 });
    const before = readFileSync(dest);
    const again = await cli("restore", "notes", "--to", dest);
    expect(again.status).toBe(3);
    expect(again.stderr).toMatch(/refusing to overwrite/);
    expect(readFileSync(dest).equals(before)).toBe(true);
    // The application's file: its owner and mode must survive the restore, or the application cannot open it.
    const empty = join(work, "empty.db");
    writeFileSync(empty, "");
    chmodSync(empty, 0o640);
    const root = process.getuid?.() === 0;
    if (root) chownSync(empty, 65534, 65534);
    const r2 = await cli("restore", "notes", "--to", empty);
    expect(r2.status, r2.stderr).toBe(0);
    expect(counts(empty)).toEqual({ Tags: 2, notes: 3000 });
    expect(statSync(empty).mode & 0o7777).toBe(0o640);
    if (root) expect([statSync(empty).uid, statSync(empty).gid]).toEqual([65534, 65534]);
  });

  it("creates the folders of a new destination file", async () => {
    const dest = join(work, "new", "deeper", "app.db");
    const r = await cli("restore", "notes", "--to", dest);
    expect(r.status, r.stderr).toBe(0);
    expect(counts(dest)).toEqual({ Tags: 2, notes: 3000 });
  });

  it("removes the scratch copy when the drill is interrupted with SIGTERM", async () => {
    const scratchDir = join(work, "scratch");
    const started = Date.now();
    const inScratch = () => (existsSync(scratchDir) ? readdirSync(scratchDir).filter((f) => f.startsWith("lifeboat_drill")) : []);
    const { seen, result: r } = await interruptWhenSeen(
      ["--config", project.config, "drill", "notes-slow"],
      { LIFEBOAT_IDENTITY_FILE: key.identityFile },
      () => inScratch().length,
    );
    expect(seen).toBe(1);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/interrupted by SIGTERM/);
    expect(inScratch()).toEqual([]);
    // The check's query was stopped too, not waited for.
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});
