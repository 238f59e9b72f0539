import type { DrillRecord } from "../../src/catalog/drill-record.ts";
import type { Manifest } from "../../src/catalog/manifest.ts";

/** The fixed "now" of the report unit tests. */
export const NOW = new Date("2026-11-24T12:00:00.000Z");

const H = 3_600_000;

/** An ISO time `hours` before NOW. */
export const ago = (hours: number) => new Date(NOW.getTime() - hours * H).toISOString();

/** The snapshot id of a snapshot started `hours` before NOW. */
export function idAgo(hours: number, suffix = "aaaa"): string {
  return `${ago(hours)
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "")}-${suffix}`;
}

/** A valid manifest of job/target finished `hours` ago. */
export function manifest(job: string, target: string, hours: number, size = 1000): Manifest {
  return {
    format: "lifeboat-snapshot",
    version: 1,
    job,
    snapshotId: idAgo(hours),
    target,
    startedAt: ago(hours),
    finishedAt: ago(hours),
    source: { kind: "postgres", boundary: "b", details: {} },
    encryption: { scheme: "age", recipients: ["age1x"] },
    compression: { scheme: "zstd", level: 1 },
    artifacts: [
      {
        name: "db.pgdump.zst.age",
        size,
        sha256: "0".repeat(64),
        format: "pgdump",
        encoding: ["age", "zstd"],
        rawBytes: size * 3,
        compressedBytes: size,
      },
    ],
    inventory: { name: "inventory.json.age", size: 100, sha256: "0".repeat(64), counts: "exact" },
    warnings: [],
    tool: { name: "lifeboat", version: "test" },
  };
}

/** A drill record finished `hours` ago that restored the snapshot taken `snapshotHours` ago. */
export function record(
  job: string,
  target: string,
  drill: string,
  hours: number,
  verdict: "pass" | "fail",
  snapshotHours = hours + 1,
): DrillRecord {
  return {
    format: "lifeboat-drill",
    version: 1,
    runId: idAgo(hours, "dddd"),
    drill,
    job,
    target,
    snapshotId: idAgo(snapshotHours),
    snapshotFinishedAt: ago(snapshotHours),
    startedAt: ago(hours),
    finishedAt: ago(hours),
    timings: { fetchMs: 1000, restoreMs: 2000, checksMs: 300, totalMs: 3300 },
    rtoMs: 3000,
    scratch: { kind: "postgres", location: "lifeboat_drill_x" },
    checks: [{ kind: "rowCounts", name: "all tables", ok: verdict === "pass" }],
    verdict,
    ...(verdict === "fail" ? { error: "row counts differ" } : {}),
    tool: { name: "lifeboat", version: "test" },
  };
}
