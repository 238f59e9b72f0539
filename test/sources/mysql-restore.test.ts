import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactInput } from "../../src/drills/kind.ts";
import { openMysqlDestination } from "../../src/drills/mysql-destination.ts";
import { LifeboatError } from "../../src/errors.ts";
import { clientError, restoreMysql } from "../../src/sources/mysql-restore.ts";
import { createTestDatabase, databaseExists, drillContext, type TestDatabase, withAdmin } from "../helpers/mysql.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("lifeboat_test_restore");
});
afterAll(async () => {
  await db?.drop();
});

describe("restoreMysql", () => {
  it("names max_allowed_packet when a row is too large for the server, without echoing the statement", async () => {
    const packet = await withAdmin(async (c) => {
      const [rows] = await c.query("SELECT @@global.max_allowed_packet AS p");
      return Number((rows as { p: number }[])[0]?.p);
    });
    // As the dump writes a BLOB: hex, twice its size, so a row of 0.6 × the limit makes a statement of 1.2 ×.
    const row = "A5".repeat(Math.ceil(packet * 0.6));
    const sql = `CREATE TABLE big (b LONGBLOB);\nINSERT INTO big VALUES (0x${row});\n`;
    const err = await restoreMysql({ url: db.url, input: Readable.from([sql]) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    const e = err as LifeboatError;
    // The server answers ERROR 1153, or (as often) just drops the connection: ERROR 2006 "server has gone away".
    expect(e.message).toMatch(/ERROR 1153 .*max_allowed_packet|ERROR 2006 .*Server has gone away/);
    expect(e.message.length).toBeLessThan(1000);
    expect(e.hint).toContain("max_allowed_packet: raise it on");
    expect(e.hint).toContain("SET GLOBAL max_allowed_packet = 1073741824");
  });
});

describe("clientError", () => {
  it("keeps the client's ERROR lines, or a bounded tail", () => {
    const echoed = `--------------\nINSERT INTO t VALUES (0x${"00".repeat(50_000)})\n--------------\n\nERROR 1153 (08S01) at line 37: Got a packet bigger than 'max_allowed_packet' bytes`;
    expect(clientError(echoed)).toBe("ERROR 1153 (08S01) at line 37: Got a packet bigger than 'max_allowed_packet' bytes");
    expect(clientError("x".repeat(5000))).toBe(`…${"x".repeat(2000)}`);
    expect(clientError("mariadb: unknown option")).toBe("mariadb: unknown option");
  });
});

describe("openMysqlDestination", () => {
  it("drops a database it created when the restore into it fails, and keeps one that existed", async () => {
    const name = `lifeboat_test_newdb_${Date.now()}`;
    const to = db.url.replace(db.name, name);
    const { ctx } = drillContext({ sourceUrl: db.url, details: { databases: ["src"], layout: "single" } });
    const broken = (): ArtifactInput => ({
      stream: async () => Readable.from(["CREATE TABLE t (x INT);\nINSERT INTO t VALUES (1);\nTHIS IS NOT SQL;\n"]),
      file: async () => "",
    });
    const signal = new AbortController().signal;
    try {
      const dest = await openMysqlDestination(to, { config: ctx.config, job: ctx.job, manifest: ctx.manifest });
      await expect(dest.restore(broken(), { overwrite: false }, signal)).rejects.toThrow(/ERROR 1064/);
      expect(await databaseExists(name)).toBe(false);
      // An existing (empty) database is the user's: it stays, holding what was restored before the error.
      const existing = await openMysqlDestination(db.url, { config: ctx.config, job: ctx.job, manifest: ctx.manifest });
      await expect(existing.restore(broken(), { overwrite: false }, signal)).rejects.toThrow(/ERROR 1064/);
      expect(await databaseExists(db.name)).toBe(true);
    } finally {
      await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS \`${name}\``));
    }
  });
});
