import { Command } from "commander";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { code, LifeboatError } from "../errors.ts";
import { type DoctorReport, runDoctor, type TargetAudit } from "../safety/audit.ts";
import { globals, print } from "./output.ts";

/** `lifeboat doctor`: checks the config, reaches every source, and reports what each target credential can do. */
export const doctorCommand = (): Command =>
  new Command("doctor")
    .description("check the config, reach every source, and test what each target credential can do (write, read, list, delete)")
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const report = await runDoctor(loaded);
      print(g.json, report, () => render(report));
      if (!report.ok) {
        throw new LifeboatError(code.failed, `doctor found ${report.problems} problem(s)`, {
          hint: "see the problems listed above; docs/SECURITY.md has least-privilege recipes for each role",
        });
      }
    });

function render(r: DoctorReport): string {
  const lines = [`config ${r.config.file}: ok (${r.config.jobs} job(s), ${r.config.drills} drill(s), ${r.config.targets} target(s))`];
  if (r.sources.length) lines.push("sources:");
  for (const s of r.sources) lines.push(`  ${s.status.padEnd(7)} ${s.job} (${s.kind}): ${s.detail}`);
  for (const t of r.targets) lines.push(...renderTarget(t));
  lines.push(`doctor: ${r.problems} problem(s), ${r.warnings} warning(s)`);
  return lines.join("\n");
}

function renderTarget(t: TargetAudit): string[] {
  const lines = [`target ${t.target} (${t.type}, ${t.where}): ${t.verdict.toUpperCase()}`];
  for (const why of t.reasons) lines.push(`  ${why}`);
  const cols = ["write", "read", "list", "delete", "overwrite"] as const;
  lines.push(`  ${"role".padEnd(8)} ${"credentials".padEnd(16)} ${cols.map((c) => c.padEnd(9)).join(" ")}`.trimEnd());
  for (const role of t.roles) {
    lines.push(`  ${role.role.padEnd(8)} ${role.credentials.padEnd(16)} ${cols.map((c) => role[c].padEnd(9)).join(" ")}`.trimEnd());
  }
  if (t.type === "s3") {
    const retention = t.defaultRetention ? `, default retention ${t.defaultRetention.days} days ${t.defaultRetention.mode}` : "";
    lines.push(`  versioning: ${t.versioning ?? "unknown"}; object lock: ${t.objectLock ?? "unknown"}${retention}`);
    lines.push(`  lock needed for "immutable": ${t.lockNeeded.days} day(s) (${t.lockNeeded.because})`);
  }
  if (t.canaries.cleanup) lines.push(`  ${t.canaries.cleanup}`);
  for (const n of t.notes) lines.push(`  note: ${n}`);
  for (const w of t.warnings) lines.push(`  WARNING: ${w}`);
  for (const p of t.problems) lines.push(`  PROBLEM: ${p}`);
  return lines;
}
