import { writeFileSync } from "node:fs";
import { Command } from "commander";
import { formatAge, type Report, type ReportRow } from "../catalog/report.ts";
import { renderReportHtml } from "../catalog/report-html.ts";
import { readReport } from "../catalog/report-read.ts";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { code, LifeboatError } from "../errors.ts";
import { openTarget } from "../pipeline/job.ts";
import { bytes, globals, print } from "./output.ts";

/**
 * `lifeboat report [--json] [--html FILE]`: the last-good-backup report, read from the targets alone. Exit 0 only
 * when every job is ok on every target, else 1.
 */
export const reportCommand = (): Command =>
  new Command("report")
    .description("report each job's newest snapshot, newest passing drill and status per target; exit 1 unless all are ok")
    .option("--html <file>", "also write a self-contained HTML status page with a timeline per job")
    .option("--job <name...>", "only these jobs")
    .action(async (opts: { html?: string; job?: string[] }, cmd: Command) => {
      const g = globals(cmd);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      for (const j of opts.job ?? []) {
        if (!loaded.jobs.has(j))
          throw new LifeboatError(code.usage, `no job named "${j}"`, {
            hint: `known jobs: ${[...loaded.jobs.keys()].join(", ") || "(none)"}`,
          });
      }
      // openTarget's default role is the reader: a report never needs to write or delete.
      const report = await readReport(loaded, { jobs: opts.job, makeTarget: (l, name) => openTarget(l, name) });
      if (opts.html) writeFileSync(opts.html, renderReportHtml(report));
      print(g.json, report, () => renderTable(report));
      if (!report.ok) {
        const bad = report.rows.filter((r) => r.status !== "ok").map((r) => `${r.job}@${r.target} ${r.status}`);
        throw new LifeboatError(code.failed, `not every job is ok: ${bad.join(", ")}`, {
          hint: "see the reasons above; lifeboat backup <job> and lifeboat drill <drill> fix most of them",
        });
      }
    });

function cells(r: ReportRow): string[] {
  return [
    r.job,
    r.target,
    r.status.toUpperCase(),
    r.newest ? `${formatAge(r.newest.ageMs)} ago` : "—",
    r.newest ? bytes(r.newest.storedBytes) : "—",
    r.drill ? `${formatAge(r.drill.ageMs)} ago` : "—",
    r.drill ? formatAge(r.drill.rtoMs) : "—",
    r.rpo ?? "—",
    r.lastGood ? `${r.lastGood.snapshotId}${r.lastGood.available ? "" : " (gone)"}` : "—",
  ];
}

/** The report as an aligned table with each non-ok row's reasons under it. */
function renderTable(report: Report): string {
  if (report.rows.length === 0) return "no jobs declared (add jobs/<name>.ts)";
  const head = ["JOB", "TARGET", "STATUS", "NEWEST", "SIZE", "DRILLED", "RTO", "RPO", "LAST GOOD"];
  const rows = report.rows.map(cells);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cols: string[]) =>
    cols
      .map((c, i) => c.padEnd(widths[i] as number))
      .join("  ")
      .trimEnd();
  const out = [line(head)];
  report.rows.forEach((r, i) => {
    out.push(line(rows[i] as string[]));
    for (const reason of r.reasons) out.push(`    ${reason}`);
    for (const p of r.pendingDeletions)
      out.push(
        `    pending deletion: ${p.snapshotId} (deleted by a prune after ${p.deleteAfter}; lifeboat undelete ${r.job} ${p.snapshotId} keeps it)`,
      );
  });
  const counts = Object.entries(report.summary)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(", ");
  out.push("", `${report.ok ? "all ok" : "NOT OK"}: ${counts} (read from the targets at ${report.generatedAt})`);
  return out.join("\n");
}
