import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, describe, expect, it } from "vitest";
import type { Scratch } from "../../src/drills/kind.ts";
import { compareCounts, mysqlDrillKind, scratchNames } from "../../src/drills/mysql.ts";
import { ConfigError, RefusedError } from "../../src/errors.ts";
import { DumpRewriter } from "../../src/sources/mysql-restore.ts";
import { adminUrl, artifactFrom, databaseExists, drillContext, withAdmin } from "../helpers/mysql.ts";

// The source is never contacted by a drill; its name only has to differ from the scratch names.
const SOURCE_DB = "lifeboat_test_src_fake";
const sourceUrl = `${adminUrl.replace(/\/$/, "")}/${SOURCE_DB}`;
const details = { databases: [SOURCE_DB], layout: "single", serverHostname: "elsewhere", serverPort: 3306 };
const key = (t: string) => `\`${SOURCE_DB}\`.\`${t}\``;
const SQL = [
  "CREATE TABLE `Order` (id INT PRIMARY KEY);",
  "INSERT INTO `Order` VALUES (1),",
  "(2),",
  "(3);",
  "CREATE TABLE `select` (id INT);",
  "INSERT INTO `select` VALUES (1);",
  "CREATE TABLE extra_one (id INT);",
  "",
].join("\n");

const scratches: Scratch[] = [];
const signal = new AbortController().signal;

async function create(opts: Partial<Parameters<typeof drillContext>[0]> = {}) {
  const { ctx, drill } = drillContext({ sourceUrl, details, scratchUrl: adminUrl, ...opts });
  const scratch = await mysqlDrillKind.createScratch(ctx);
  scratches.push(scratch);
  return { scratch, drill, ctx, name: scratch.location.split("/")[1] as string };
}

afterAll(async () => {
  for (const s of scratches) await s.drop().catch(() => {});
});

describe("mysql drill kind", () => {
  it("needs a scratch server, with a hint", async () => {
    const { ctx } = drillContext({ sourceUrl, details });
    const err = await mysqlDrillKind.createScratch(ctx).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.hint).toMatch(/scratch: \{ mysql:/);
  });

  it("names scratch databases lifeboat_drill_<job>_<runId>, within MySQL's 64 characters", () => {
    expect(scratchNames("orders-db", "ab12", 0)).toEqual(["lifeboat_drill_orders_db_ab12"]);
    expect(scratchNames("orders-db", "ab12", 2)).toEqual(["lifeboat_drill_orders_db_ab12_1", "lifeboat_drill_orders_db_ab12_2"]);
    const long = scratchNames("a".repeat(63), "0123456789abcdef", 12);
    for (const n of long) expect(n.length).toBeLessThanOrEqual(64);
    expect(long[11]).toMatch(/^lifeboat_drill_a+_0123456789abcdef_12$/);
  });

  it("refuses a scratch name that is a source database on the source server, creating nothing", async () => {
    const runId = `r${Date.now().toString(36)}`;
    const clash = scratchNames("x", runId, 0)[0] as string;
    const cases = [
      // The same URL endpoint (loopback names count as one host) …
      { sourceUrl: `${adminUrl.replace(/\/$/, "")}/${clash}`, details: { databases: [clash], layout: "single" } },
      { sourceUrl: `mysql://root@localhost:3306/${clash}`, details: { databases: [clash], layout: "single" } },
      // … or the server's own identity, recorded at backup time, behind another host name.
      { sourceUrl: `mysql://root@db.internal.example:3306/${clash}`, details: await realIdentity(clash) },
    ];
    for (const c of cases) {
      const { ctx } = drillContext({ ...c, scratchUrl: adminUrl, job: "x", runId });
      await expect(mysqlDrillKind.createScratch(ctx)).rejects.toBeInstanceOf(RefusedError);
    }
    expect(await databaseExists(clash)).toBe(false);
  });

  it("never reuses an existing database", async () => {
    const runId = `dup${Date.now().toString(36)}`;
    await create({ runId });
    const { ctx } = drillContext({ sourceUrl, details, scratchUrl: adminUrl, runId });
    await expect(mysqlDrillKind.createScratch(ctx)).rejects.toThrow(/already exists/);
  });

  it("fails a check query that runs past queryTimeout instead of waiting for it", async () => {
    const { scratch, drill } = await create();
    await scratch.restore(artifactFrom(Readable.from([SQL])), signal);
    const started = Date.now();
    const results = await scratch.check(
      { kind: "mysql", counts: "exact", tables: {} },
      drill({
        rowCounts: "off",
        queryTimeout: "1s",
        queries: [{ name: "slow", sql: "SELECT COUNT(*) FROM (SELECT SLEEP(5)) s", equals: 1 }],
      }),
      signal,
    );
    expect(results).toEqual([
      expect.objectContaining({ name: "slow", ok: false, detail: expect.stringMatching(/max_statement_time|interrupted/i) }),
    ]);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it("reports each missing, extra and differing table, and runs check queries", async () => {
    const { scratch, drill } = await create();
    await scratch.restore(artifactFrom(Readable.from([SQL])), signal);
    const inventory = { kind: "mysql", counts: "exact" as const, tables: { [key("Order")]: 3, [key("select")]: 2, [key("gone")]: 5 } };
    const results = await scratch.check(
      inventory,
      drill({
        queries: [
          { name: "orders", sql: "SELECT COUNT(*) FROM `Order`", min: 1, equals: 3 },
          { name: "too few", sql: "SELECT COUNT(*) FROM `Order`", min: 10 },
          { name: "broken", sql: "SELECT COUNT(*) FROM no_such_table" },
          { name: "text", sql: "SELECT 'abc'" },
          { name: "rows", sql: "SELECT id FROM `Order`" },
          { name: "decimal", sql: "SELECT SUM(id) / 2 FROM `Order`", equals: 3 },
          { name: "columns", sql: "SELECT 1, 2" },
          { name: "hex text", sql: "SELECT '0x10'", equals: 16 },
        ],
      }),
      signal,
    );
    const [counts, ...queries] = results;
    expect(counts).toMatchObject({ kind: "rowCounts", ok: false, expected: 3, actual: 3 });
    expect(counts?.mismatches).toEqual([
      { item: key("extra_one"), expected: null, actual: 0 },
      { item: key("gone"), expected: 5, actual: null },
      { item: key("select"), expected: 2, actual: 1 },
    ]);
    expect(counts?.detail).toBe("1 table(s) differ, 1 missing, 1 not in the snapshot");
    expect(queries.map((q) => [q.name, q.ok])).toEqual([
      ["orders", true],
      ["too few", false],
      ["broken", false],
      ["text", false],
      ["rows", false],
      ["decimal", true],
      ["columns", false],
      ["hex text", false],
    ]);
    expect(queries[1]).toMatchObject({ actual: 3, expected: { min: 10 } });
    expect(queries[2]?.detail).toMatch(/the query failed: Table '.*no_such_table' doesn't exist/);
    expect(queries[3]?.detail).toMatch(/"abc", not a number/);
    expect(queries[4]?.detail).toMatch(/returned 3 rows;/);
    expect(queries[6]?.detail).toMatch(/returned one row of 2 columns;/);
    expect(queries[7]?.detail).toMatch(/"0x10", not a number/);
    const off = await scratch.check(inventory, drill({ rowCounts: "off" }), signal);
    expect(off).toEqual([]);
  });

  it("drops the scratch database after a failed restore, and again without complaint", async () => {
    const { scratch, name } = await create();
    expect(await databaseExists(name)).toBe(true);
    const err = await scratch
      .restore(artifactFrom(Readable.from(["CREATE TABLE t (id INT);\nTHIS IS NOT SQL;\n"])), signal)
      .catch((e) => e);
    expect(err).toMatchObject({ code: "SOURCE" });
    expect(err.message).toMatch(/ERROR 1064/);
    expect(err.hint).toMatch(/partial restore/);
    await scratch.drop();
    expect(await databaseExists(name)).toBe(false);
    await scratch.drop();
  });

  it("refuses a dump that switches to a database it was not given", async () => {
    const { scratch } = await create();
    const err = await scratch
      .restore(artifactFrom(Readable.from(["CREATE TABLE t (id INT);\nUSE `mysql`;\nDROP TABLE t;\n"])), signal)
      .catch((e) => e);
    expect(err).toMatchObject({ code: "REFUSED" });
    expect(err.message).toMatch(/switches to database `mysql`/);
    // Nothing after the refused line ran: t exists in the scratch database only.
    const [rows] = await withAdmin((c) =>
      c.query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_NAME = 't' AND TABLE_SCHEMA = 'mysql'"),
    );
    expect(rows).toEqual([{ n: 0 }]);
  });
});

describe("compareCounts", () => {
  const actual = { a: 100, b: 7, c: 50 };
  it("demands equality for exact counts and ranges where recorded", () => {
    expect(compareCounts({ kind: "mysql", counts: "exact", tables: { a: 100, b: 7, c: 50 } }, actual).ok).toBe(true);
    const r = compareCounts({ kind: "mysql", counts: "exact", tables: { a: 99, b: 5, c: 50 }, ranges: { b: [5, 9] } }, actual);
    expect(r.mismatches).toEqual([{ item: "a", expected: 99, actual: 100 }]);
  });

  it("allows 1% (at least one row) for approximate counts without a range", () => {
    const inv = { kind: "mysql", counts: "approximate" as const, tables: { a: 99, b: 8, c: 52 } };
    expect(compareCounts(inv, actual).mismatches).toEqual([{ item: "c", expected: "51..53", actual: 50 }]);
  });

  it("leaves out tables created while the dump ran, which were never counted, and says so", () => {
    const inv = { kind: "mysql", counts: "exact" as const, tables: { a: 100, b: 7 } };
    expect(compareCounts(inv, actual).mismatches).toEqual([{ item: "c", expected: null, actual: 50 }]);
    const r = compareCounts({ ...inv, uncounted: ["c"] }, actual);
    expect(r.ok).toBe(true);
    expect(r.detail).toBe("2 table(s), counts equal; 1 created during the dump, not counted");
  });
});

// How the drill restore writes only its scratch databases.
describe("DumpRewriter", () => {
  const rewrite = async (sql: string, opts: ConstructorParameters<typeof DumpRewriter>[0], chunk = 3) => {
    const bytes = Buffer.from(sql, "utf8");
    const pieces = Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) => bytes.subarray(i * chunk, (i + 1) * chunk));
    const out: Buffer[] = [];
    await pipeline(Readable.from(pieces), new DumpRewriter(opts), async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) out.push(c);
    });
    return Buffer.concat(out).toString("utf8");
  };

  it("maps database names, strips definers and disables events, leaving data lines alone", async () => {
    const sql = [
      "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shöp` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;",
      "USE `shöp`;",
      "INSERT INTO `t` VALUES (1,'USE `shöp`; DEFINER=`x`@`y` ENABLE DO');",
      "ALTER DATABASE `shöp` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;",
      "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`127.0.0.1`*/ /*!50003 trigger trg before insert on `t` for each row set new.v = 1 */;;",
      "CREATE DEFINER=`app`@`%` PROCEDURE `p`()",
      "/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */",
      "/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `ev` ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO delete from t */ ;;",
      "-- Dump completed",
    ].join("\n");
    const out = await rewrite(sql, { databases: { shöp: "scratch_1" }, stripDefiners: true, disableEvents: true });
    expect(out.split("\n")).toEqual([
      "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `scratch_1` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;",
      "USE `scratch_1`;",
      "INSERT INTO `t` VALUES (1,'USE `shöp`; DEFINER=`x`@`y` ENABLE DO');",
      "ALTER DATABASE `scratch_1` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;",
      "/*!50003 CREATE*/ /*!50017 */ /*!50003 trigger trg before insert on `t` for each row set new.v = 1 */;;",
      "CREATE PROCEDURE `p`()",
      "/*!50013 SQL SECURITY DEFINER */",
      "/*!50106 CREATE*/ /*!50117 */ /*!50106 EVENT `ev` ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE DO delete from t */ ;;",
      "-- Dump completed",
    ]);
    // Without the options, only names change; ALTER DATABASE of a single-database dump goes to its target.
    const plain = await rewrite(
      "ALTER DATABASE `src` CHARACTER SET latin1 ;\nCREATE DEFINER=`a`@`b` FUNCTION f()\n",
      { databases: {}, current: "target" },
      1,
    );
    expect(plain).toBe("ALTER DATABASE `target` CHARACTER SET latin1 ;\nCREATE DEFINER=`a`@`b` FUNCTION f()\n");
  });

  it("points a view at the restored copy of another dumped database, never at the source's", async () => {
    const sql = "/*!50001 VIEW `v` AS select `shöp`.`t`.`x` AS `x` from `shöp`.`t` join `other`.`u` */;\n";
    const out = await rewrite(sql, { databases: { shöp: "scratch_1", "we`ird": "scratch_2" } });
    expect(out).toBe("/*!50001 VIEW `v` AS select `scratch_1`.`t`.`x` AS `x` from `scratch_1`.`t` join `other`.`u` */;\n");
    const identity = await rewrite(sql, { databases: { shöp: "shöp" } });
    expect(identity).toBe(sql);
  });

  it("passes routine, trigger and event bodies through exactly as dumped", async () => {
    const sql = [
      "USE `shop`;",
      "DELIMITER ;;",
      "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()",
      "begin",
      "DROP DATABASE IF EXISTS `junk`;",
      "select 'DEFINER=`x`@`y`';",
      "end",
      ";;",
      "CREATE DEFINER=`root`@`localhost` FUNCTION `f`() RETURNS text",
      "return 'a",
      "USE `shop`;",
      "b'",
      ";;",
      "DELIMITER ;",
      "CREATE TABLE `t` (x INT);",
      "",
    ].join("\n");
    const out = await rewrite(sql, { databases: { shop: "scratch_1" }, stripDefiners: true });
    expect(out).toBe(
      sql
        .replace("USE `shop`;\nDELIMITER", "USE `scratch_1`;\nDELIMITER")
        .replace("CREATE DEFINER=`root`@`localhost` PROCEDURE", "CREATE PROCEDURE")
        .replace("CREATE DEFINER=`root`@`localhost` FUNCTION", "CREATE FUNCTION"),
    );
  });

  it("checks every statement again once the delimiter is back, and statements (not bodies) under another", async () => {
    const block = "DELIMITER ;;\nCREATE PROCEDURE p()\nbegin\nselect 1;\nend\n;;\nDELIMITER ;\n";
    await expect(rewrite(`${block}USE \`prod\`;\n`, { databases: { shop: "s1" } })).rejects.toThrow(/switches to database `prod`/);
    await expect(rewrite("DELIMITER ;;\nselect 1 ;;\nUSE `prod`;;\n", { databases: { shop: "s1" } })).rejects.toBeInstanceOf(RefusedError);
  });

  it("refuses a database it was not given", async () => {
    await expect(rewrite("USE `prod`;\n", { databases: { shop: "s1" } })).rejects.toBeInstanceOf(RefusedError);
    await expect(rewrite("/*!40000 DROP DATABASE IF EXISTS*/ `prod`;\n", { databases: {} })).rejects.toThrow(/drops database `?prod/);
  });

  it("refuses database statements it cannot read rather than pass them to the real database", async () => {
    const opts = { databases: { shop: "s1" }, current: "s1" };
    for (const line of [
      // --skip-quote-names
      "USE shop;",
      "CREATE DATABASE /*!32312 IF NOT EXISTS*/ shop /*!40100 DEFAULT CHARACTER SET utf8mb4 */;",
      // --compatible=ansi
      'USE "shop";',
      // a name with a line break: the statement's first line
      "USE `sh",
      "/*!40000 DROP DATABASE IF EXISTS*/ shop;",
      "use `shop`;",
      "CREATE SCHEMA `shop`;",
    ]) {
      const err = await rewrite(`${line}\nINSERT INTO t VALUES (1);\n`, opts).catch((e: unknown) => e);
      expect(err, line).toBeInstanceOf(RefusedError);
      expect((err as RefusedError).message, line).toContain("the dump holds a database statement lifeboat cannot map, so it was not run");
      expect((err as RefusedError).hint, line).toMatch(/--skip-quote-names/);
    }
    // Tables, and data lines that merely start like one, pass.
    const fine = "CREATE TABLE `used` (x INT);\nDROP TABLE IF EXISTS `databases`;\nINSERT INTO t VALUES ('use x;');\n";
    expect(await rewrite(fine, opts)).toBe(fine);
  });
});

/** The identity a backup of this server would record, for a source reached by another name. */
function realIdentity(database: string): Promise<Record<string, unknown>> {
  return withAdmin(async (c) => {
    const [rows] = await c.query("SELECT @@hostname AS h, @@port AS p");
    const r = (rows as { h: string; p: number }[])[0];
    return { databases: [database], layout: "single", serverHostname: r?.h, serverPort: r?.p };
  });
}
