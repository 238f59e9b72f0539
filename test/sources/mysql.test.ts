import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Scratch } from "../../src/drills/kind.ts";
import { mysqlDrillKind } from "../../src/drills/mysql.ts";
import { ConfigError, LifeboatError } from "../../src/errors.ts";
import { createSource } from "../../src/sources/index.ts";
import { MysqlSource } from "../../src/sources/mysql.ts";
import { parseMysqlUrl } from "../../src/sources/mysql-connect.ts";
import { describeSourceContract, drain, within } from "../contracts/source.ts";
import {
  adminUrl,
  artifactFrom,
  createTestDatabase,
  createTestUser,
  databaseExists,
  drillContext,
  type TestDatabase,
  withAdmin,
} from "../helpers/mysql.ts";

// Mixed case and reserved words as names, a table past 200k rows, an empty one, a MyISAM one, a view, a trigger,
// routines and an event. `select` and ticks move together: every writer transaction adds one row to each.
const FIXTURE = `
  CREATE TABLE \`Order\` (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(50) NOT NULL, total DECIMAL(10,2) NOT NULL, note TEXT) ENGINE=InnoDB;
  INSERT INTO \`Order\` (customer, total, note)
    SELECT CONCAT('c', seq % 50), seq / 7, IF(seq % 3 = 0, 'emoji \u{1F680} and ''quotes'' and \\\\backslash', NULL) FROM seq_1_to_1234;
  CREATE TABLE \`select\` (id INT AUTO_INCREMENT PRIMARY KEY, ref BIGINT) ENGINE=InnoDB;
  INSERT INTO \`select\` (ref) SELECT seq FROM seq_1_to_17;
  CREATE TABLE empty_one (id INT) ENGINE=InnoDB;
  CREATE TABLE big (id INT PRIMARY KEY, payload CHAR(32) NOT NULL, raw VARBINARY(16) NOT NULL) ENGINE=InnoDB;
  INSERT INTO big SELECT seq, MD5(seq), UNHEX(MD5(seq * 7)) FROM seq_1_to_200000;
  CREATE TABLE ticks (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;
  INSERT INTO ticks () VALUES ();
  CREATE TABLE legacy_log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(100)) ENGINE=MyISAM;
  INSERT INTO legacy_log (msg) VALUES ('a'), ('b'), ('c');
  CREATE VIEW order_totals AS SELECT customer, SUM(total) AS total FROM \`Order\` GROUP BY customer;
  CREATE TRIGGER order_upper BEFORE INSERT ON \`Order\` FOR EACH ROW SET NEW.customer = UPPER(NEW.customer);
  CREATE FUNCTION order_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM \`Order\`);
  CREATE PROCEDURE add_tick() BEGIN INSERT INTO ticks () VALUES (); END;
  CREATE EVENT purge_ticks ON SCHEDULE EVERY 1 DAY DO DELETE FROM ticks WHERE at < NOW() - INTERVAL 10 YEAR;
`;

let db: TestDatabase;
let tmp: string;
const cleanups: (() => Promise<void>)[] = [];

function source(url = db.url, extra: Partial<{ databases: string[]; all: boolean; dumpArgs: string[] }> = {}): MysqlSource {
  return new MysqlSource({ type: "mysql", url, boundary: "test", all: false, dumpArgs: [], ...extra });
}

const key = (table: string, database = db.name) => `\`${database}\`.\`${table}\``;

/** Sessions on the test database other than the asking one. */
function sessionsOn(name: string): Promise<number> {
  return withAdmin(async (c) => {
    const [rows] = await c.query("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", [name]);
    return Number((rows as { n: number }[])[0]?.n);
  });
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not true after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates a scratch through the drill kind, remembering to drop it. */
async function scratchFor(details: Record<string, unknown>, databases?: string[]): Promise<Scratch> {
  const { ctx } = drillContext({ sourceUrl: databases ? adminUrl : db.url, details, scratchUrl: adminUrl, databases });
  const scratch = await mysqlDrillKind.createScratch(ctx);
  cleanups.push(() => scratch.drop());
  return scratch;
}

async function checksum(database: string, table: string): Promise<string> {
  return withAdmin(async (c) => {
    const [rows] = await c.query(`CHECKSUM TABLE \`${database}\`.\`${table}\``);
    return String((rows as { Checksum: string }[])[0]?.Checksum);
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  tmp = await mkdtemp(join(tmpdir(), "lifeboat-mysql-test-"));
  await db.run(FIXTURE);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await db?.drop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("MysqlSource", () => {
  it("counts every table keyed `db`.`table`, and a drill restores the same rows, view, trigger, routines and event", async () => {
    const dump = await source().dump(new AbortController().signal);
    expect(dump.artifact).toBe("db.sql");
    expect(dump.format).toBe("mysql-dump-sql");
    const file = join(tmp, "fixture.sql");
    await pipeline(dump.stream, createWriteStream(file));
    const [info, inventory] = await Promise.all([dump.done, dump.inventory]);

    expect(info.tool).toMatch(/^(mariadb-dump|mysqldump)\s+Ver /);
    expect(info.details).toMatchObject({
      tool: expect.stringMatching(/^(mariadb-dump|mysqldump)$/),
      databases: [db.name],
      layout: "single",
    });
    expect(info.details).toMatchObject({ counts: "exact", host: "127.0.0.1", port: 3306 });
    expect(info.details?.writePauseMs).toBeLessThan(1000);
    expect(info.warnings.join("\n")).toMatch(/non-transactional.*`legacy_log` \(MyISAM\)/);
    expect(inventory).toMatchObject({ kind: "mysql", counts: "exact", databases: [db.name] });
    expect(inventory.tables).toEqual({
      [key("Order")]: 1234,
      [key("big")]: 200000,
      [key("empty_one")]: 0,
      [key("legacy_log")]: 3,
      [key("select")]: 17,
      [key("ticks")]: 1,
    });
    expect(inventory.ranges).toEqual({ [key("legacy_log")]: [3, 3] });

    const scratch = await scratchFor(info.details ?? {});
    expect(scratch.location).toMatch(/^127\.0\.0\.1:3306\/lifeboat_drill_shop_db_[0-9a-f]+$/);
    const scratchDb = scratch.location.split("/")[1] as string;
    await scratch.restore(artifactFrom(file), new AbortController().signal);
    const { drill } = drillContext({ sourceUrl: db.url, details: {} });
    const results = await scratch.check(
      inventory,
      drill({
        queries: [
          { name: "function", sql: "SELECT order_count()", equals: 1234 },
          { name: "view", sql: "SELECT COUNT(*) FROM order_totals", equals: 50 },
          { name: "trigger", sql: "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()", equals: 1 },
          { name: "routines", sql: "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()", equals: 2 },
          {
            name: "event restored disabled",
            sql: "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND STATUS = 'DISABLED'",
            equals: 1,
          },
          {
            name: "utf8mb4 survived",
            sql: "SELECT COUNT(*) FROM `Order` WHERE note LIKE '%\u{1F680}%''quotes''%\\\\\\\\backslash'",
            equals: 411,
          },
        ],
      }),
      new AbortController().signal,
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results[0]).toMatchObject({ kind: "rowCounts", ok: true, expected: 6, actual: 6 });
    for (const t of ["big", "Order", "select", "legacy_log"]) expect(await checksum(scratchDb, t)).toBe(await checksum(db.name, t));
    // The source's own event is untouched; only the scratch copy is disabled.
    await withAdmin(async (c) => {
      const [rows] = await c.query("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", [db.name]);
      expect(rows).toEqual([{ STATUS: "ENABLED" }]);
    });
    await scratch.drop();
    expect(await databaseExists(scratchDb)).toBe(false);
  });

  it("counts and dumps the same instant while other sessions keep writing", async () => {
    const writer = await db.connection();
    const logger = await db.connection();
    let stop = false;
    let inserted = 0;
    // Each transaction adds one row to ticks and one to `select`: any consistent snapshot keeps them in step.
    const writing = (async () => {
      while (!stop) {
        await writer.query(
          "START TRANSACTION; INSERT INTO ticks () VALUES (); INSERT INTO `select` (ref) VALUES (LAST_INSERT_ID()); COMMIT",
        );
        inserted++;
      }
    })();
    const logging = (async () => {
      while (!stop) await logger.query("INSERT INTO legacy_log (msg) VALUES ('tick')");
    })();
    await eventually("writes started", async () => inserted > 20);

    // A drill's manifest says what the snapshot holds; here the dump streams straight into the scratch database.
    const scratch = await scratchFor({ databases: [db.name], layout: "single" });
    const dump = await source().dump(new AbortController().signal);
    const [, inventory, info] = await Promise.all([
      scratch.restore(artifactFrom(dump.stream), new AbortController().signal),
      dump.inventory,
      dump.done,
    ]);
    stop = true;
    await Promise.all([writing, logging]);
    const [rows] = await writer.query("SELECT COUNT(*) AS n FROM ticks");
    writer.destroy();
    logger.destroy();

    expect(inventory.counts).toBe("exact");
    expect(info.details?.writePauseMs).toBeLessThan(1000);
    expect(info.details?.writePauseMs).toBeGreaterThan(0);
    // Only the MyISAM table has a range; every InnoDB table is exact.
    expect(Object.keys(inventory.ranges ?? {})).toEqual([key("legacy_log")]);
    const tables = inventory.tables ?? {};
    expect((tables[key("select")] as number) - 17).toBe((tables[key("ticks")] as number) - 1);
    // The writers kept going during the dump, so the table grew past what the snapshot saw.
    expect(Number((rows as { n: number }[])[0]?.n)).toBeGreaterThan(tables[key("ticks")] ?? Infinity);
    const { drill } = drillContext({ sourceUrl: db.url, details: {} });
    const results = await scratch.check(
      inventory,
      drill({
        queries: [{ name: "pairs", sql: "SELECT (SELECT COUNT(*) FROM `select`) - 17 - ((SELECT COUNT(*) FROM ticks) - 1)", equals: 0 }],
      }),
      new AbortController().signal,
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
  });

  it("without RELOAD counts are approximate with a warning, and a password full of quoting hazards works", async () => {
    const password = `p"a'ss#w\\rd ;x`;
    const user = await createTestUser(password, [
      `GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, EXECUTE ON \`${db.name}\`.* TO {user}`,
      "GRANT SELECT ON mysql.proc TO {user}",
    ]);
    cleanups.push(() => user.drop());
    const dump = await source(user.url(db.name)).dump(new AbortController().signal);
    const file = join(tmp, "approximate.sql");
    await pipeline(dump.stream, createWriteStream(file));
    const [info, inventory] = await Promise.all([dump.done, dump.inventory]);
    expect(inventory.counts).toBe("approximate");
    expect(info.details).toMatchObject({ counts: "approximate" });
    expect(info.details?.writePauseMs).toBeUndefined();
    expect(info.warnings.join("\n")).toMatch(new RegExp(`user "${user.name}" lacks the RELOAD privilege.*approximate`));
    expect(Object.keys(inventory.ranges ?? {}).sort()).toEqual(Object.keys(inventory.tables ?? {}).sort());
    expect(JSON.stringify({ info, inventory })).not.toContain("ss#w");

    const scratch = await scratchFor(info.details ?? {});
    await scratch.restore(artifactFrom(file), new AbortController().signal);
    const { drill } = drillContext({ sourceUrl: db.url, details: {} });
    const [counts] = await scratch.check(inventory, drill(), new AbortController().signal);
    expect(counts).toMatchObject({ kind: "rowCounts", ok: true });
    expect(counts?.detail).toMatch(/within the recorded range/);
  });

  it("rejects a wrong password, an unknown database and an unreachable server clearly, without the password", async () => {
    const user = await createTestUser("R1ght-passw0rd", [`GRANT SELECT ON \`${db.name}\`.* TO {user}`]);
    cleanups.push(() => user.drop());
    const wrong = new URL(user.url(db.name));
    wrong.password = "Wr0ng-s3cret";
    const auth = await source(wrong.toString())
      .dump(new AbortController().signal)
      .catch((e) => e);
    expect(auth).toBeInstanceOf(LifeboatError);
    expect(auth).toMatchObject({ code: "SOURCE" });
    expect(auth.message).toMatch(new RegExp(`authentication failed for user "${user.name}"`));
    expect(auth.hint).toMatch(/user and password/);

    const unknown = await source(user.url("lifeboat_test_does_not_exist_xyz"))
      .dump(new AbortController().signal)
      .catch((e) => e);
    expect(unknown).toMatchObject({ code: "SOURCE" });
    expect(unknown.message).toMatch(/database "lifeboat_test_does_not_exist_xyz" does not exist/);
    const unknownInList = await source(adminUrl, { databases: [db.name, "lifeboat_test_nope_xyz"] })
      .dump(new AbortController().signal)
      .catch((e) => e);
    expect(unknownInList.message).toMatch(/database "lifeboat_test_nope_xyz" does not exist/);

    const down = await source("mysql://root:Wr0ng-s3cret@127.0.0.1:1/x")
      .dump(new AbortController().signal)
      .catch((e) => e);
    expect(down.message).toMatch(/cannot reach the server at 127\.0\.0\.1:1/);
    for (const e of [auth, unknown, down]) {
      expect(JSON.stringify({ m: e.message, h: e.hint, s: e.stack })).not.toMatch(/Wr0ng-s3cret|R1ght-passw0rd/);
    }
  });

  it("fails done and the stream with the tool's message when its session dies mid-dump", async () => {
    const dump = await source().dump(new AbortController().signal);
    await new Promise<void>((resolve) => dump.stream.once("data", () => resolve()));
    dump.stream.pause();
    // Listening before the kill: the tool may exit (and the stream fail) before the kill's query returns.
    const outcome = drain(dump.stream);
    // The tool is now reading big, soon blocked on the full pipe; end its session from outside.
    await eventually("the dump reads big", () =>
      withAdmin(async (c) => {
        const [rows] = await c.query("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE '%FROM `big`%'", [db.name]);
        for (const r of rows as { ID: number }[]) await c.query(`KILL ${Number(r.ID)}`);
        return (rows as unknown[]).length > 0;
      }),
    );
    dump.stream.resume();
    const [streamed, done] = await Promise.all([outcome, dump.done.catch((e) => e)]);
    expect(done).toMatchObject({ code: "SOURCE" });
    expect(done.message).toMatch(/(mariadb-dump|mysqldump) exited with code \d+: .*(Lost connection|interrupted|killed|gone away)/is);
    expect(streamed.error).toBe(done);
    await dump.inventory.catch(() => {});
  });

  it("ends the tool and every session on abort", async () => {
    const ac = new AbortController();
    const dump = await source().dump(ac.signal);
    await new Promise<void>((resolve) => dump.stream.once("data", () => resolve()));
    ac.abort();
    dump.stream.resume();
    await expect(within(20_000, "done", dump.done)).rejects.toMatchObject({ code: "ABORTED" });
    await eventually("no sessions left on the test database", async () => (await sessionsOn(db.name)) === 0);
  });

  it("warns that system-versioned tables lose their history unless --dump-history is given", async () => {
    const other = await createTestDatabase();
    cleanups.push(() => other.drop());
    await other.run(
      "CREATE TABLE prices (id INT PRIMARY KEY, p INT) WITH SYSTEM VERSIONING; INSERT INTO prices VALUES (1, 5); UPDATE prices SET p = 6;",
    );
    const warningsOf = async (dumpArgs: string[]) => {
      const dump = await source(other.url, { dumpArgs }).dump(new AbortController().signal);
      await drain(dump.stream);
      return (await dump.done).warnings.join("\n");
    };
    expect(await warningsOf([])).toMatch(/system-versioned tables .* not their history: `.*`\.`prices`; add "--dump-history"/);
    expect(await warningsOf(["--dump-history"])).not.toMatch(/system-versioned/);
  });

  it("dumps several databases, and a drill restores each into its own scratch database", async () => {
    const other = await createTestDatabase();
    cleanups.push(() => other.drop());
    await other.run("CREATE TABLE `Order` (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO `Order` SELECT seq FROM seq_1_to_42;");
    const dump = await source(adminUrl, { databases: [db.name, other.name], dumpArgs: [`--ignore_table=${db.name}.big`] }).dump(
      new AbortController().signal,
    );
    const file = join(tmp, "multi.sql");
    await pipeline(dump.stream, createWriteStream(file));
    const [info, inventory] = await Promise.all([dump.done, dump.inventory]);
    expect(info.details).toMatchObject({ layout: "multi", databases: [db.name, other.name] });
    expect(info.warnings.join("\n")).toMatch(/dumpArgs --ignore_table=.*leave tables or rows out/);
    expect(inventory.tables?.[key("Order", other.name)]).toBe(42);

    const scratch = await scratchFor(info.details ?? {}, [db.name, other.name]);
    const names = (scratch.location.split("/")[1] as string).split(",");
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/_1$/);
    expect(names[1]).toMatch(/_2$/);
    await scratch.restore(artifactFrom(file), new AbortController().signal);
    const { drill } = drillContext({ sourceUrl: adminUrl, details: {} });
    const [counts] = await scratch.check(inventory, drill(), new AbortController().signal);
    // big was left out on purpose: the drill says so, table by table.
    expect(counts).toMatchObject({ ok: false, mismatches: [{ item: key("big"), expected: 200000, actual: null }] });
    expect(await withAdmin(async (c) => (await c.query(`SELECT COUNT(*) AS n FROM \`${names[1]}\`.\`Order\``))[0])).toEqual([{ n: 42 }]);
    await scratch.drop();
    for (const n of names) expect(await databaseExists(n)).toBe(false);
  });

  it("refuses a database, table or column with a line break in its name, which no restore could read safely", async () => {
    const name = `lifeboat_test_nl_${process.pid}\nx`;
    await withAdmin((c) => c.query(`CREATE DATABASE \`${name}\``));
    const plain = `lifeboat_test_nl_${process.pid}_t`;
    // A name whose second line reads as a statement: before the refusal, a drill took it for a DELIMITER and then
    // passed the next database's USE to the real server.
    await withAdmin((c) => c.query(`CREATE DATABASE \`${plain}\`; CREATE TABLE \`${plain}\`.\`zz\nDELIMITER ;;\nx\` (\`a\nb\` int)`));
    try {
      const err = await source(adminUrl, { databases: [name] })
        .dump(new AbortController().signal)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LifeboatError);
      expect((err as LifeboatError).message).toContain(`database ${JSON.stringify(name)} has a line break in the name`);
      expect((err as LifeboatError).hint).toMatch(/rename it/);
      const table = await source(adminUrl, { databases: [plain] })
        .dump(new AbortController().signal)
        .catch((e: unknown) => e);
      expect((table as LifeboatError).message).toContain(`table or view ${JSON.stringify(`${plain}.zz\nDELIMITER ;;\nx`)}`);
      expect((table as LifeboatError).message).toContain(`column ${JSON.stringify(`${plain}.a\nb`)}`);
      expect((table as LifeboatError).message).toMatch(/have a line break in the name$/);
    } finally {
      await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS \`${name}\`; DROP DATABASE IF EXISTS \`${plain}\``));
    }
  });

  it("refuses dumpArgs and database selections it cannot honour", () => {
    for (const bad of [
      ["--result-file=/tmp/x"],
      ["-B"],
      ["--host=other"],
      ["--databases"],
      ["--master-data=2"],
      ["-uroot"],
      ["--where", "id > 1"],
      // Spellings the tool reads as refused options: a prefix, underscores, loose-, a false value.
      ["--por=3399"],
      ["--result_file=/tmp/leak.sql"],
      ["--loose-host=other"],
      ["--single-transaction=0"],
      ["--disable-add-locks"],
      ["--ssl_key=k.pem"],
      // Unquoted or ANSI-quoted names: a restore could not map the dump's databases.
      ["--skip-quote-names"],
      ["--quote-names=0"],
      ["--disable-quote-names"],
      ["--compatible=ansi"],
    ]) {
      expect(() => source(db.url, { dumpArgs: bad })).toThrow(ConfigError);
    }
    expect(() => source(adminUrl)).toThrow(/no database to back up/);
    expect(() => source(db.url, { all: true })).toThrow(/names database/);
    expect(() => source(adminUrl, { all: true, databases: ["a"] })).toThrow(/not both/);
    expect(() => source(adminUrl, { databases: ["a", "a"] })).toThrow(/twice/);
    expect(createSource({ type: "mysql", url: db.url, boundary: "test", all: false, dumpArgs: [] })).toBeInstanceOf(MysqlSource);
  });
});

describe("mysql URLs", () => {
  it("reads user, password, database and keywords, keeping the password out of sight", () => {
    const p = parseMysqlUrl("mysql://app:p%40ss%2Bw+rd@db.example.com:3307/my%20db?ssl-mode=verify_identity&ssl-ca=/etc/ca.pem");
    expect(p).toMatchObject({
      host: "db.example.com",
      port: 3307,
      user: "app",
      database: "my db",
      tls: "VERIFY_IDENTITY",
      sslCa: "/etc/ca.pem",
    });
    expect(p.password?.reveal()).toBe("p@ss+w+rd");
    expect(JSON.stringify(p)).not.toContain("p@ss");
    expect(parseMysqlUrl("mariadb://u@h").port).toBe(3306);
    expect(parseMysqlUrl("mysql://u@h/a%2Fb").database).toBe("a/b");
    expect(() => parseMysqlUrl("mysql://u@h/a/b")).toThrow(/single database name .*%2F/);
    expect(parseMysqlUrl("mysql://u@localhost/db?socket=/run/mysqld/mysqld.sock").socket).toBe("/run/mysqld/mysqld.sock");
  });

  it("refuses what it cannot honour, without echoing the password", () => {
    expect(() => parseMysqlUrl("mysql://u:hunter22@h/db?ssl-mode=bogus")).toThrow(/ssl-mode "bogus"/);
    expect(() => parseMysqlUrl("mysql://u:hunter22@h/db?charset=latin1")).toThrow(/"charset" is not supported/);
    expect(() => parseMysqlUrl("postgres://u:hunter22@h/db")).toThrow(/scheme/);
    const err = (() => {
      try {
        parseMysqlUrl("mysql://u:hunter22@h/db?ssl-mode=x");
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).not.toContain("hunter22");
  });
});

describeSourceContract("mysql", () => source());
