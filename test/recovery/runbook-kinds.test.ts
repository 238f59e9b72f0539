// Follows the MySQL/MariaDB, SQLite and volume sections of docs/RECOVERY.md with stock tools only, as
// runbook.test.ts does for PostgreSQL: real backups are taken with the lifeboat CLI, then the runbook's `# step`
// blocks run verbatim in bash (curl or the aws stand-in, age, zstd, sha256sum, mariadb, sqlite3, tar, python3), with
// the runbook's variables in the environment and no lifeboat code or project tool on PATH. Each restore is then
// compared with the source independently of the runbook's own checks.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { createTestDatabase, adminUrl as mysqlAdminUrl, type TestDatabase, withAdmin } from "../helpers/mysql.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";
import { KIND_VARIANTS, readRunbook, runBash, STORAGE_VARIANTS, scriptFor, stepsFor, stockPath, writeAwsShim } from "./runbook.ts";

const PREFIX = "kinds";

let s3: S3TestServer;
let fsRoot: string;
let work: string;
let identityFile: string;
let awsShim: string;
let config: string;
const scratch: string[] = [];
const databases: TestDatabase[] = [];
/** Databases the runbook created (one-database restores): dropped at the end, by these generated names only. */
const restoredDbs: string[] = [];

let shopDb: TestDatabase;
let shopsA: TestDatabase;
let shopsB: TestDatabase;
let sqlitePath: string;
let volumePath: string;

// ---------------------------------------------------------------------------------------------------------------
// Independent views of the sources and the restores

/** Row counts and full contents (ordered) of every base table of a database, keyed by table name. */
async function mysqlTables(db: string): Promise<Record<string, { count: number; rows: string }>> {
  return withAdmin(async (c) => {
    const [tables] = await c.query(
      "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
      [db],
    );
    const out: Record<string, { count: number; rows: string }> = {};
    for (const { t } of tables as { t: string }[]) {
      const q = `\`${db.replace(/`/g, "``")}\`.\`${t.replace(/`/g, "``")}\``;
      const [rows] = await c.query(`SELECT * FROM ${q} ORDER BY 1`);
      out[t] = { count: (rows as unknown[]).length, rows: JSON.stringify(rows) };
    }
    return out;
  });
}

/** Names of the views and routines of a database: what a dump carries besides tables. */
async function mysqlObjects(db: string): Promise<string[]> {
  return withAdmin(async (c) => {
    const [views] = await c.query("SELECT CONCAT('view ', TABLE_NAME) AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", [db]);
    const [routines] = await c.query(
      "SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?",
      [db],
    );
    const [triggers] = await c.query(
      "SELECT CONCAT('trigger ', TRIGGER_NAME) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
      [db],
    );
    return [...(views as { n: string }[]), ...(routines as { n: string }[]), ...(triggers as { n: string }[])].map((r) => r.n).sort();
  });
}

/** Every user table's row count, read with node:sqlite (not the tools the runbook uses). */
function sqliteCounts(path: string): Record<string, number> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const names = db.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite%' order by name").all() as {
      name: string;
    }[];
    return Object.fromEntries(
      names.map(({ name }) => [
        name,
        Number((db.prepare(`select count(*) as n from "${name.replace(/"/g, '""')}"`).get() as { n: number }).n),
      ]),
    );
  } finally {
    db.close();
  }
}

function sqliteIntegrity(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare("pragma integrity_check").all() as Record<string, unknown>[]).map((r) => String(Object.values(r)[0]));
  } finally {
    db.close();
  }
}

interface TreeEntry {
  type: "file" | "dir" | "symlink" | "other";
  mode: number;
  /** Whole seconds. */
  mtime: number;
  content?: string;
  target?: string;
}

/** A directory tree as a map path → entry, without following symlinks; `skip` leaves paths out. */
function readTree(root: string, skip: (path: string) => boolean = () => false): Record<string, TreeEntry> {
  const out: Record<string, TreeEntry> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      if (skip(path)) continue;
      const st = lstatSync(join(root, path));
      const base = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isSymbolicLink()) out[path] = { type: "symlink", mode: 0, mtime: 0, target: readlinkSync(join(root, path)) };
      else if (st.isDirectory()) {
        out[path] = { type: "dir", ...base };
        walk(path);
      } else if (st.isFile()) out[path] = { type: "file", ...base, content: readFileSync(join(root, path)).toString("base64") };
      else out[path] = { type: "other", ...base };
    }
  };
  walk("");
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Set-up: sources, a project with a job per case, the targets

beforeAll(async () => {
  const key = await makeKey();
  identityFile = key.identityFile;
  [s3, shopDb, shopsA, shopsB] = await Promise.all([
    startS3Server(),
    createTestDatabase("lifeboat_test_rbk"),
    createTestDatabase("lifeboat_test_rbka"),
    createTestDatabase("lifeboat_test_rbkb"),
  ]);
  databases.push(shopDb, shopsA, shopsB);
  fsRoot = mkdtempSync(join(tmpdir(), "lifeboat-nas-"));
  work = mkdtempSync(join(tmpdir(), "lifeboat-kinds-"));
  awsShim = writeAwsShim();
  scratch.push(fsRoot, work, awsShim);

  // MySQL, one database: InnoDB and MyISAM tables, awkward names, a view, a routine and a trigger.
  await shopDb.run(`
    CREATE TABLE \`Order\` (id INT PRIMARY KEY AUTO_INCREMENT, total DECIMAL(10,2), note VARCHAR(200), raw BLOB) ENGINE=InnoDB;
    INSERT INTO \`Order\` (total, note, raw)
      SELECT seq * 1.25, CONCAT('note ', seq, ' ü'), UNHEX(MD5(seq)) FROM seq_1_to_300;
    CREATE TABLE \`we\`\`ird name\` (x INT PRIMARY KEY) ENGINE=InnoDB;
    INSERT INTO \`we\`\`ird name\` VALUES (1), (2), (3);
    CREATE TABLE logs (id INT PRIMARY KEY, msg TEXT) ENGINE=MyISAM;
    INSERT INTO logs SELECT seq, REPEAT('x', seq) FROM seq_1_to_7;
    CREATE TABLE empty_table (x INT) ENGINE=InnoDB;
    CREATE TABLE audit (n INT) ENGINE=InnoDB;
    CREATE VIEW big_orders AS SELECT id, total FROM \`Order\` WHERE total > 100;
    CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
    CREATE TRIGGER order_audit AFTER INSERT ON \`Order\` FOR EACH ROW INSERT INTO audit VALUES (NEW.id);`);
  // MySQL, several databases.
  await shopsA.run(`
    CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=InnoDB;
    INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_40;`);
  await shopsB.run(`
    CREATE TABLE \`select\` (x INT) ENGINE=InnoDB;
    INSERT INTO \`select\` VALUES (1), (2), (3);
    CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=Aria;
    INSERT INTO notes VALUES (1, 'a'), (2, 'b');`);

  // SQLite in WAL mode, with an AUTOINCREMENT table (sqlite_sequence), awkward names and an FTS5 virtual table.
  mkdirSync(join(work, "app"));
  sqlitePath = join(work, "app", "app.db");
  const lite = new DatabaseSync(sqlitePath);
  lite.exec(`pragma journal_mode = wal;
    create table notes (id integer primary key autoincrement, body text);
    create table "Order Items" (sku text, qty integer);
    create table "we""ird" (x);
    create index notes_body on notes (body);
    create virtual table docs using fts5(body);
    with recursive g(n) as (select 1 union all select n + 1 from g where n < 2500) insert into notes (body) select 'note ' || n from g;
    insert into "Order Items" values ('a', 1), ('b', 2);
    insert into docs values ('hello world'), ('lifeboat drills');`);
  lite.close();

  // A volume: modes, nested and private directories, every kind of symlink, a large file, a long and a non-ASCII
  // name, a hard link, and a file the job excludes.
  volumePath = join(work, "volume");
  const v = (p: string) => join(volumePath, p);
  mkdirSync(v("uploads/2026/private"), { recursive: true });
  mkdirSync(v("ünï cödé"));
  writeFileSync(v("README"), "hello\n");
  chmodSync(v("README"), 0o640);
  writeFileSync(v("run.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(v("run.sh"), 0o755);
  writeFileSync(v("empty"), "");
  writeFileSync(v("uploads/2026/big.bin"), randomBytes(600 * 1024));
  writeFileSync(v("uploads/2026/private/secret.txt"), "s3cret\n");
  chmodSync(v("uploads/2026/private/secret.txt"), 0o600);
  chmodSync(v("uploads/2026/private"), 0o700);
  writeFileSync(v(`ünï cödé/${"n".repeat(140)}.txt`), "long\n");
  linkSync(v("README"), v("uploads/README.hardlink"));
  symlinkSync("../README", v("uploads/readme-link"));
  symlinkSync("/etc/hostname", v("absolute-link"));
  symlinkSync("uploads/2026", v("dir-link"));
  symlinkSync("does/not/exist", v("dangling"));
  writeFileSync(v("uploads/cache.tmp"), "left out\n");
  utimesSync(v("README"), new Date("2024-02-03T04:05:06Z"), new Date("2024-02-03T04:05:06Z"));

  const offsite = { ...s3.config(PREFIX), boundary: "test:s3" };
  const project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: [${JSON.stringify(key.recipient)}] },
  targets: {
    offsite: ${JSON.stringify(offsite)},
    nas: { type: "filesystem", path: ${JSON.stringify(fsRoot)}, boundary: "test:nas" },
  },
});
`,
    "jobs/shop.ts": `export default { name: "shop", source: { type: "mysql", url: ${JSON.stringify(shopDb.url)}, boundary: "test:mysql" }, targets: ["offsite", "nas"] };
`,
    "jobs/shops.ts": `export default { name: "shops", source: { type: "mysql", url: ${JSON.stringify(mysqlAdminUrl)}, databases: ${JSON.stringify([shopsA.name, shopsB.name])}, boundary: "test:mysql" }, targets: ["nas", "offsite"] };
`,
    "jobs/notes.ts": `export default { name: "notes", source: { type: "sqlite", path: ${JSON.stringify(sqlitePath)}, boundary: "test:app" }, targets: ["offsite", "nas"] };
`,
    // S3 only: a filesystem target on the volume's own disk would break the device rule.
    "jobs/files.ts": `export default { name: "files", source: { type: "volume", path: ${JSON.stringify(volumePath)}, exclude: ["*.tmp"], boundary: "test:app" }, targets: ["offsite"] };
`,
  });
  config = project.config;
  scratch.push(project.dir);
});

afterAll(async () => {
  await s3?.stop();
  for (const name of restoredDbs) await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS \`${name}\``));
  await Promise.allSettled(databases.map((d) => d.drop()));
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** `lifeboat --json backup <job>`: a child process, asynchronous (the S3 server answers from this process). */
async function backup(job: string): Promise<string> {
  const r = await runCli(["--config", config, "--json", "backup", job]);
  if (r.status !== 0) throw new Error(`backup ${job} exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
  const result = r.json as { snapshotId: string; ok: boolean };
  expect(result.ok).toBe(true);
  return result.snapshotId;
}

/** The runbook's variables for this test's targets and servers. */
function runbookEnv(job: string, dir: string, extra: Record<string, string> = {}): Record<string, string> {
  const my = new URL(mysqlAdminUrl);
  const env: Record<string, string> = {
    PATH: stockPath(),
    HOME: dir,
    LANG: "C.UTF-8",
    JOB: job,
    IDENTITY: identityFile,
    WORK: join(dir, "recovery"),
    NEWDB: "lifeboat_test_not_used",
    PGHOST: "127.0.0.1",
    PGPORT: "5432",
    PGUSER: "postgres",
    MYSQL_HOST: my.hostname,
    MYSQL_TCP_PORT: my.port || "3306",
    MYSQL_USER: decodeURIComponent(my.username) || "root",
    NEWFILE: join(dir, "restored.db"),
    NEWDIR: join(dir, "restored"),
    BUCKET: s3.bucket,
    PREFIX,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    AWS_ENDPOINT_URL: s3.endpoint,
    S3_URL: `${s3.endpoint}/${s3.bucket}`,
    FS_PATH: fsRoot,
    ...extra,
  };
  if (my.password) env.MYSQL_PWD = decodeURIComponent(my.password);
  return env;
}

/** Runs the runbook for one target variant and source kind; fails with the transcript unless bash exits 0. */
async function follow(storage: string, kind: string, job: string, extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), `lifeboat-recovery-${kind}-${storage}-`));
  scratch.push(dir);
  const env = runbookEnv(job, dir, extra);
  if (storage === "aws") env.PATH = `${awsShim}:${env.PATH}`;
  const r = await runBash(scriptFor(readRunbook(), storage, kind), { cwd: dir, env });
  // SHOW_RUNBOOK=1 prints the transcript of a passing run too.
  if (process.env.SHOW_RUNBOOK) console.log(r.stdout, r.stderr);
  const shown = `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  expect(r.code, shown).toBe(0);
  return { ...r, shown, env, dir };
}

describe("docs/RECOVERY.md for MySQL/MariaDB, SQLite and volumes", () => {
  it("marks steps 1 to 7 for every source kind and way of reading a target, and only known variants", () => {
    const runbook = readRunbook();
    const known: string[] = [...STORAGE_VARIANTS, ...KIND_VARIANTS];
    for (const s of runbook.steps) if (s.variant) expect(known, `variant of step ${s.step}`).toContain(s.variant);
    for (const storage of STORAGE_VARIANTS) {
      for (const kind of KIND_VARIANTS) {
        expect(
          stepsFor(runbook, storage, kind).map((s) => s.step),
          `${storage} + ${kind}`,
        ).toEqual([1, 2, 3, 4, 5, 6, 7]);
      }
    }
    const env = runbookEnv("x", "/nonexistent");
    for (const v of runbook.variables) expect(Object.keys(env), `variable ${v} of the runbook`).toContain(v);
    expect(runbook.variables).toEqual(expect.arrayContaining(["MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_USER", "NEWFILE", "NEWDIR"]));
  });

  it("restores a one-database MySQL snapshot into a new database (curl)", async () => {
    const snapshotId = await backup("shop");
    const before = await mysqlTables(shopDb.name);
    const objects = await mysqlObjects(shopDb.name);
    // Changes after the backup must not show up in the restore.
    await shopDb.run("INSERT INTO `Order` (total, note) VALUES (9.99, 'after the backup'); DELETE FROM logs WHERE id = 1;");

    const newdb = `lifeboat_test_rbk_restored_${randomBytes(4).toString("hex")}`;
    restoredDbs.push(newdb);
    const r = await follow("curl", "mysql", "shop", { NEWDB: newdb });
    expect(r.stdout, r.shown).toContain(`newest complete snapshot: ${snapshotId}`);
    expect(r.stdout, r.shown).toMatch(/db\.sql\.zst\.age: OK/);
    expect(r.stdout, r.shown).toMatch(/inventory\.json\.age: OK/);
    expect(r.stdout, r.shown).toContain('"kind": "mysql"');
    expect(r.stdout, r.shown).toMatch(/^-- Dump completed on /m);
    expect(r.stdout, r.shown).toContain(`restored into ${newdb}`);
    expect(r.stdout, r.shown).toContain("OK: every table has the row count of the inventory");

    const after = await mysqlTables(newdb);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    for (const t of Object.keys(before)) expect(after[t], `table ${t}`).toEqual(before[t]);
    expect(after.Order?.count).toBe(300);
    expect(after.logs?.count).toBe(7);
    expect(await mysqlObjects(newdb)).toEqual(objects);
  });

  it("restores a several-database MySQL snapshot under the databases' own names (fs)", async () => {
    const snapshotId = await backup("shops");
    const before = { a: await mysqlTables(shopsA.name), b: await mysqlTables(shopsB.name) };
    // The worst day: the databases are gone.
    await withAdmin((c) => c.query(`DROP DATABASE \`${shopsA.name}\`; DROP DATABASE \`${shopsB.name}\``));

    const r = await follow("fs", "mysql", "shops");
    expect(r.stdout, r.shown).toContain(`newest complete snapshot: ${snapshotId}`);
    expect(r.stdout, r.shown).toContain("restored the databases of the dump under their own names");
    expect(r.stdout, r.shown).toContain("OK: every table has the row count of the inventory");
    expect(await mysqlTables(shopsA.name)).toEqual(before.a);
    expect(await mysqlTables(shopsB.name)).toEqual(before.b);
    expect(before.a.items?.count).toBe(40);
  });

  it("restores a SQLite snapshot to a new file that passes integrity_check (aws)", async () => {
    const snapshotId = await backup("notes");
    const before = sqliteCounts(sqlitePath);
    const lite = new DatabaseSync(sqlitePath);
    lite.exec("insert into notes (body) values ('after the backup'); delete from \"Order Items\";");
    lite.close();

    const r = await follow("aws", "sqlite", "notes");
    expect(r.stdout, r.shown).toContain(`newest complete snapshot: ${snapshotId}`);
    expect(r.stdout, r.shown).toMatch(/db\.sqlite\.zst\.age: OK/);
    expect(r.stdout, r.shown).toMatch(/^ok$/m);
    expect(r.stdout, r.shown).toContain(`restored to ${r.env.NEWFILE}`);
    expect(r.stdout, r.shown).toContain("OK: every table has the row count of the inventory");

    const restored = r.env.NEWFILE as string;
    expect(sqliteIntegrity(restored)).toEqual(["ok"]);
    expect(sqliteCounts(restored)).toEqual(before);
    expect(before.notes).toBe(2500);
    expect(before["Order Items"]).toBe(2);
    const db = new DatabaseSync(restored, { readOnly: true });
    try {
      expect(db.prepare("select count(*) as n from docs where docs match 'lifeboat'").get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }

    // Step 6 run again must not overwrite the file it restored.
    const step6 = stepsFor(readRunbook(), "aws", "sqlite").find((s) => s.step === 6)?.code as string;
    const again = await runBash(`cd "$WORK"\n${step6}`, { cwd: r.dir, env: r.env });
    expect(again.stderr).toMatch(/cannot overwrite existing file/);
    expect(again.stdout).not.toContain(`restored to ${restored}`);
  });

  it("restores a volume snapshot: contents, symlinks, modes and mtimes as they were (curl)", async () => {
    const snapshotId = await backup("files");
    const before = readTree(volumePath, (p) => p.endsWith(".tmp"));
    writeFileSync(join(volumePath, "README"), "changed after the backup\n");

    const r = await follow("curl", "volume", "files");
    expect(r.stdout, r.shown).toContain(`newest complete snapshot: ${snapshotId}`);
    expect(r.stdout, r.shown).toMatch(/volume\.tar\.zst\.age: OK/);
    expect(r.stdout, r.shown).toContain('"kind": "volume"');
    expect(r.stdout, r.shown).toMatch(/OK: every entry matches the inventory \(\d+ files, \d+ bytes, \d+ directories, 4 symlinks\)/);

    const after = readTree(r.env.NEWDIR as string);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    for (const p of Object.keys(before)) expect(after[p], p).toEqual(before[p]);
    expect(after["uploads/cache.tmp"]).toBeUndefined();
    expect(after["absolute-link"]).toMatchObject({ type: "symlink", target: "/etc/hostname" });
    expect(after["uploads/2026/private"]).toMatchObject({ type: "dir", mode: 0o700 });
    expect(after["run.sh"]).toMatchObject({ mode: 0o755 });
    expect(after.README).toMatchObject({ mode: 0o640, mtime: Date.parse("2024-02-03T04:05:06Z") / 1000 });
    // A hard link comes back as a separate file with the same content.
    expect(after["uploads/README.hardlink"]?.content).toBe(after.README?.content);
  });

  it("SQLite step 7 refuses a file step 6 never restored, and creates none", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-recovery-sqlite-missing-"));
    scratch.push(dir);
    const env = runbookEnv("notes", dir);
    mkdirSync(env.WORK as string);
    writeFileSync(join(env.WORK as string, "inventory.json"), JSON.stringify({ kind: "sqlite", counts: "exact", tables: { notes: 1 } }));
    const step7 = stepsFor(readRunbook(), "fs", "sqlite").find((s) => s.step === 7)?.code as string;
    const r = await runBash(`cd "$WORK"\n${step7}`, { cwd: dir, env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unable to open database file/);
    expect(r.stdout).not.toContain("OK:");
    expect(existsSync(env.NEWFILE as string)).toBe(false);
  });

  it("volume step 7 run as another user than root names what it cannot read instead of crashing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-recovery-volume-nobody-"));
    scratch.push(dir);
    chmodSync(dir, 0o755);
    const env = runbookEnv("files", dir);
    const work = env.WORK as string;
    const tree = env.NEWDIR as string;
    mkdirSync(work, { mode: 0o755 });
    mkdirSync(join(tree, "locked"), { recursive: true, mode: 0o755 });
    writeFileSync(join(tree, "secret"), "x");
    writeFileSync(join(tree, "locked", "inside"), "y");
    const sha = (t: string) => createHash("sha256").update(t).digest("hex");
    const files = [
      { path: "locked", type: "dir", size: 0, mode: 0o000 },
      { path: "locked/inside", type: "file", size: 1, sha256: sha("y"), mode: 0o644 },
      { path: "secret", type: "file", size: 1, sha256: sha("x"), mode: 0o000 },
    ];
    writeFileSync(
      join(work, "inventory.json"),
      JSON.stringify({ kind: "volume", counts: "exact", files, fileCount: 2, totalBytes: 2, dirCount: 1, symlinkCount: 0 }),
    );
    chmodSync(join(tree, "secret"), 0o000);
    chmodSync(join(tree, "locked"), 0o000);
    const step7 = stepsFor(readRunbook(), "fs", "volume").find((s) => s.step === 7)?.code as string;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn("bash", ["-c", `cd "$WORK"\n${step7}`], { cwd: work, env, uid: 65534, gid: 65534 });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      c.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.stderr).not.toMatch(/Traceback/);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("secret: cannot read (Permission denied); run step 7 as root");
    expect(r.stdout).toContain("locked: cannot read (Permission denied); run step 7 as root");
  });

  it("finds a damaged restore: the volume check of step 7 reports what differs", async () => {
    const runbook = readRunbook();
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-recovery-volume-damaged-"));
    scratch.push(dir);
    const env = runbookEnv("files", dir);
    const full = await runBash(scriptFor(runbook, "curl", "volume"), { cwd: dir, env });
    expect(full.code, full.stdout + full.stderr).toBe(0);
    const restored = env.NEWDIR as string;
    writeFileSync(join(restored, "README"), "tampered\n");
    chmodSync(join(restored, "run.sh"), 0o644);
    writeFileSync(join(restored, "extra"), "");
    rmSync(join(restored, "dangling"));
    const step7 = stepsFor(runbook, "curl", "volume").find((s) => s.step === 7)?.code as string;
    const r = await runBash(`cd "$WORK"\n${step7}`, { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FILES DIFFER:");
    expect(r.stdout).toMatch(/^README: inventory 6 bytes/m);
    expect(r.stdout).toContain("run.sh: inventory mode 755, restored 644");
    expect(r.stdout).toContain("extra: not in the inventory (file)");
    expect(r.stdout).toContain("dangling: inventory symlink, restored nothing");
  });
});
