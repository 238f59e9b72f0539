import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countTables } from "../../src/sources/postgres.ts";
import { makeKey } from "../helpers/age.ts";
import { atTerminal as atTerminalOf, runCli } from "../helpers/cli.ts";
import { adminUrl, createTestDatabase, type TestDatabase, withAdmin } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// The guarded restore: empty or missing destinations restore, one holding data needs a person at a terminal.
let source: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { config: string };
const env = () => ({ LIFEBOAT_IDENTITY_FILE: key.identityFile });
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], env());

async function counts(db: TestDatabase | string): Promise<Record<string, number>> {
  const url = typeof db === "string" ? db : db.url;
  const pg = (await import("pg")).default;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await countTables(c);
  } finally {
    await c.end();
  }
}

/** Runs the CLI under a pseudo-terminal, typing `answer` at the confirmation prompt as a person would. */
const atTerminal = (answer: string, args: string[]) => atTerminalOf(answer, ["--config", project.config, ...args], env());

beforeAll(async () => {
  [source, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await source.client();
  await c.query(`create table items (id serial primary key, name text); insert into items (name) select 'item ' || g from generate_series(1, 5000) g;
                 create table "Audit Log" (at timestamptz default now()); insert into "Audit Log" default values;`);
  await c.end();
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(s3.config("r"))} }, scratch: { postgres: "${adminUrl}" } });
`,
    "jobs/app.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "app", source: { type: "postgres", url: "${source.url}", boundary: "pg" }, targets: ["offsite"] });
`,
  });
  const r = await cli("backup", "app");
  expect(r.status, r.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.allSettled([source?.drop(), s3?.stop()]);
});

describe("lifeboat restore (postgres)", () => {
  it("restores into a database that does not exist yet (created) with every row", async () => {
    const name = `lifeboat_test_new_${Date.now()}`;
    const url = source.url.replace(source.name, name);
    try {
      const r = await cli("--json", "restore", "app", "--to", url);
      expect(r.status, r.stderr).toBe(0);
      expect(await counts(url)).toEqual(await counts(source));
    } finally {
      await withAdmin((c) => c.query(`drop database if exists "${name}" with (force)`));
    }
  });

  it("restores into an existing empty database", async () => {
    const empty = await createTestDatabase();
    try {
      const r = await cli("restore", "app", "--to", empty.url);
      expect(r.status, r.stderr).toBe(0);
      expect(await counts(empty)).toEqual({ 'public."Audit Log"': 1, "public.items": 5000 });
      expect(r.stderr).toMatch(/snapshot holds 2 tables, 5001 rows/);
    } finally {
      await empty.drop();
    }
  });

  it("refuses a database that holds data without a person at a terminal: exit 3, every row in place", async () => {
    const busy = await createTestDatabase();
    try {
      const c = await busy.client();
      await c.query("create table precious (x int); insert into precious select generate_series(1, 42);");
      await c.end();
      const piped = await cli("restore", "app", "--to", busy.url);
      expect(piped.status).toBe(3);
      expect(piped.stderr).toMatch(/refusing to overwrite .* holds data and standard input and output are not an interactive terminal/);
      const yes = await cli("restore", "app", "--to", busy.url, "--yes");
      expect(yes.status).toBe(2);
      // A terminal with CI set is refused too.
      const ci = await runCli(["--config", project.config, "restore", "app", "--to", busy.url], { ...env(), CI: "true" });
      expect(ci.status).toBe(3);
      expect(await counts(busy)).toEqual({ "public.precious": 42 });
    } finally {
      await busy.drop();
    }
  });

  it("counts functions, types, schemas and large objects as data in the way", async () => {
    for (const sql of [
      "create function keepme() returns int language sql as $$select 1$$",
      "create type mood as enum ('ok')",
      "create schema audit",
      "select lo_from_bytea(0, 'precious')",
    ]) {
      const busy = await createTestDatabase();
      try {
        const c = await busy.client();
        await c.query(sql);
        await c.end();
        const r = await cli("restore", "app", "--to", busy.url);
        expect(r.status, `${sql}: ${r.stderr}`).toBe(3);
        expect(r.stderr).toMatch(/refusing to overwrite/);
      } finally {
        await busy.drop();
      }
    }
  });

  it("refuses a URL that names no database (it would restore into the server's default one)", async () => {
    const r = await cli("restore", "app", "--to", adminUrl.replace(/\/[^/]*$/, "/"));
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/names no database/);
  });

  it("at a terminal, a wrong name refuses and the right name restores", async () => {
    const busy = await createTestDatabase();
    try {
      const c = await busy.client();
      await c.query("create table items (id int); insert into items values (1);");
      await c.end();
      const wrong = await atTerminal("not-the-name", ["restore", "app", "--to", busy.url]);
      expect(wrong.out).toMatch(/HOLDS DATA: 1 tables, 1 rows/);
      expect(wrong.status).toBe(3);
      expect(await counts(busy)).toEqual({ "public.items": 1 });
      const right = await atTerminal(busy.name, ["restore", "app", "--to", busy.url]);
      expect(right.status, right.out).toBe(0);
      expect(await counts(busy)).toEqual({ 'public."Audit Log"': 1, "public.items": 5000 });
    } finally {
      await busy.drop();
    }
  });

  // Last: it damages the newest snapshot.
  it("a damaged snapshot restored to a new database fails (exit 1) and leaves no database behind", async () => {
    const b = await cli("--json", "backup", "app");
    expect(b.status, b.stderr).toBe(0);
    const id = (b.json as { snapshotId: string }).snapshotId;
    const url = `${s3.endpoint}/${s3.bucket}/r/app/snapshots/${id}/db.pgdump.zst.age`;
    const stored = Buffer.from(await (await fetch(url)).arrayBuffer());
    const middle = stored.length >> 1;
    stored.writeUInt8(stored.readUInt8(middle) ^ 0xff, middle);
    expect((await fetch(url, { method: "PUT", body: stored })).ok).toBe(true);
    const name = `lifeboat_test_damaged_${Date.now()}`;
    try {
      const r = await cli("restore", "app", "--to", source.url.replace(source.name, name));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/db\.pgdump\.zst\.age: (payload chunk \d+ failed authentication|sha256 \w+ does not match the manifest)/);
      expect(r.stderr).toContain(
        `hint: snapshot ${id} on offsite cannot be restored: pick an older one (lifeboat snapshots app, then --snapshot <id>)`,
      );
      const left = await withAdmin((c) => c.query("select 1 from pg_database where datname = $1", [name]));
      expect(left.rowCount).toBe(0);
    } finally {
      await withAdmin((c) => c.query(`drop database if exists "${name}" with (force)`));
    }
  });
});
