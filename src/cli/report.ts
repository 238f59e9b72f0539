import { Command } from "commander";
import { formatAge, type Report, type ReportRow } from "../catalog/report.ts";
import { renderReportHtml } from "../catalog/report-html.ts";
import { readReport } from "../catalog/report-read.ts";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { code, LifeboatError } from "../errors.ts";
import { openTarget, roleUse } from "../pipeline/job.ts";
import { checkOutputFolder, writeOutputFile } from "./out-file.ts";
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
      // Before reading every target: a mistyped folder should not cost the whole read.
      if (opts.html) checkOutputFolder(opts.html, "--html");
      const jobs = opts.job ?? [...loaded.jobs.keys()];
      const use = roleUse(loaded, [...new Set(jobs.flatMap((j) => loaded.jobs.get(j)?.targets ?? []))], "reader");
      if (!g.json) for (const l of use.lines) process.stderr.write(`${l}\n`);
      const report = await readReport(loaded, { jobs: opts.job, makeTarget: (l, name) => openTarget(l, name, "reader") });
      print(g.json, { ...report, role: use.role, credentials: use.credentials }, () => renderTable(report));
      // After printing: the report is worth having even when the page cannot be written.
      if (opts.html) writeOutputFile(opts.html, renderReportHtml(report), "--html");
      if (report.rows.length === 0) {
        throw new LifeboatError(code.failed, "no jobs declared: nothing is backed up", {
          hint: "add jobs/<name>.ts beside backup.config.ts (docs/CONFIG.md), or point --config at the right file",
        });
      }
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
  if (report.rows.length === 0) return "no jobs declared (add jobs/<name>.ts): nothing is backed up";
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
