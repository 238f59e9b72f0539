import { ConfigError, code, wrap } from "../errors.ts";
import { closeQuietly, connectMysql, createDatabaseLike, parseMysqlUrl, quoteId, serverOf } from "../sources/mysql-connect.ts";
import { restoreMysql } from "../sources/mysql-restore.ts";
import { databaseCollations } from "../sources/mysql-tables.ts";
import type { Destination, DestinationContext } from "./kind.ts";

/**
 * Opens a MySQL/MariaDB server as a restore destination. A one-database snapshot restores into the database the URL
 * names (created if missing); a several-database snapshot restores each database under its own name, into a URL
 * that names none. The dump drops and recreates each table it holds; other tables are left alone.
 */
export async function openMysqlDestination(to: string, ctx: DestinationContext): Promise<Destination> {
  const p = parseMysqlUrl(to);
  const details = ctx.manifest.source.details;
  const sourceDbs = Array.isArray(details.databases) ? details.databases.map(String) : [];
  const multi = details.layout === "multi" || sourceDbs.length > 1;
  if (!multi && !p.database) {
    throw new ConfigError(`restore: --to ${serverOf(p)} names no database`, {
      hint: "give the database to restore into: mysql://user@host:3306/<database>",
    });
  }
  if (multi && p.database) {
    throw new ConfigError(
      `restore: snapshot ${ctx.manifest.snapshotId} holds ${sourceDbs.length} databases (${sourceDbs.join(", ")}); --to names one`,
      {
        hint: "give the server only (mysql://user@host:3306/): each database is restored under its own name",
      },
    );
  }
  const targets = multi ? sourceDbs : [p.database as string];
  const map: Record<string, string> = multi
    ? Object.fromEntries(sourceDbs.map((d) => [d, d]))
    : { [sourceDbs[0] ?? (p.database as string)]: p.database as string };
  const display = `${serverOf(p)}/${targets.join(",")}`;
  return {
    confirmName: multi ? serverOf(p) : (p.database as string),
    display,
    async inspect() {
      const conn = await connectMysql(p, null);
      try {
        // Routines and events are a database's contents too: user code a restore would replace.
        const [rows] = await conn.query({
          sql: `SELECT s.SCHEMA_NAME,
                  (SELECT COUNT(*) FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = s.SCHEMA_NAME),
                  (SELECT COALESCE(SUM(t.TABLE_ROWS), 0) FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = s.SCHEMA_NAME),
                  (SELECT COUNT(*) FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = s.SCHEMA_NAME),
                  (SELECT COUNT(*) FROM information_schema.EVENTS e WHERE e.EVENT_SCHEMA = s.SCHEMA_NAME)
                FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME IN (?)`,
          values: [targets],
          rowsAsArray: true,
        });
        const found = rows as [string, number, number, number, number][];
        const busy = found.filter(([, tables, , routines, events]) => Number(tables) + Number(routines) + Number(events) > 0);
        if (busy.length === 0) {
          const missing = targets.filter((t) => !found.some(([n]) => n === t));
          return {
            empty: true,
            lines: [
              missing.length
                ? `database(s) ${missing.join(", ")} do not exist; they will be created`
                : `database(s) ${targets.join(", ")} exist and are empty`,
            ],
          };
        }
        return {
          empty: false,
          lines: [
            ...busy.map(
              ([n, tables, approx, routines, events]) =>
                `database ${n} on ${serverOf(p)} HOLDS DATA: ${tables} tables, about ${approx} rows, ${routines} routines, ${events} events`,
            ),
            "  every table in the snapshot will be dropped and recreated",
          ],
        };
      } finally {
        closeQuietly(conn);
      }
    },
    async restore(input, _opts, signal) {
      const conn = await connectMysql(p, null);
      let created: string[] = [];
      try {
        const collations = (details.collations ?? {}) as Record<string, unknown>;
        const sourceOf = Object.fromEntries(Object.entries(map).map(([from, to]) => [to, from]));
        const existing = await databaseCollations(conn, targets);
        created = targets.filter((t) => !(t in existing));
        // A database that exists keeps its own collation; one created here gets the source's.
        for (const t of targets) await createDatabaseLike(conn, t, collations[sourceOf[t] ?? ""], { ifNotExists: true });
      } catch (err) {
        throw wrap(`restore: create database on ${serverOf(p)}`, err, code.source);
      } finally {
        closeQuietly(conn);
      }
      try {
        await restoreMysql({ url: to, input: await input.stream(), databases: map, signal });
      } catch (err) {
        // Databases lifeboat made a moment ago hold only a half-restored copy, nobody's data: as for PostgreSQL, they go.
        if (created.length) {
          const c = await connectMysql(p, null).catch(() => undefined);
          try {
            for (const t of created) await c?.query(`DROP DATABASE IF EXISTS ${quoteId(t)}`);
          } catch {
            // Best effort: the restore's own error is what the user needs.
          } finally {
            if (c) closeQuietly(c);
          }
        }
        throw err;
      }
    },
  };
}
