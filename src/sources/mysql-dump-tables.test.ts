import { describe, expect, it } from "vitest";
import { DumpTables } from "./mysql-dump-tables.ts";

const DUMP = [
  "-- MariaDB dump",
  "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shöp`;",
  "USE `shöp`;",
  "DROP TABLE IF EXISTS `Order`;",
  "CREATE TABLE `Order` (",
  "  `id` int(11) NOT NULL",
  ");",
  "INSERT INTO `Order` VALUES (1,'\\nCREATE TABLE `fake` (');",
  "CREATE TABLE `we``ird` (x int);",
  "/*!50001 CREATE VIEW `v` AS SELECT 1 AS `x` */;",
  "DELIMITER ;;",
  "CREATE PROCEDURE `p`()",
  "begin",
  "CREATE TABLE `in_body` (x int);",
  "end ;;",
  "DELIMITER ;",
  "USE `other`;",
  "CREATE TABLE `t` (x int);",
  "-- Dump completed",
  "",
].join("\n");

function scan(text: string, size: number, database?: string): string[] {
  const bytes = Buffer.from(text, "utf8");
  const t = new DumpTables(database);
  for (let i = 0; i < bytes.length; i += size) t.push(bytes.subarray(i, i + size));
  return [...t.keys].sort();
}

describe("DumpTables", () => {
  const want = ["`other`.`t`", "`shöp`.`Order`", "`shöp`.`we``ird`"];

  it("finds the tables a dump creates, per database, and none inside routine bodies or data", () => {
    expect(scan(DUMP, 1 << 20)).toEqual(want);
  });

  it("finds the same whatever the chunk boundaries", () => {
    for (const size of [1, 2, 3, 7, 13, 64, 100]) expect(scan(DUMP, size), `chunks of ${size}`).toEqual(want);
  });

  it("uses the given database for a dump without USE lines", () => {
    expect(scan("-- dump\nCREATE TABLE `a` (x int);\n", 5, "shop")).toEqual(["`shop`.`a`"]);
  });
});
