import { Command } from "commander";
import { type PruneResult, pruneJob } from "../catalog/prune.ts";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { code, LifeboatError } from "../errors.ts";
import { globals, print } from "./output.ts";

/** `lifeboat prune <job>`: applies the job's retention policy with the pruner credential, or shows the plan. */
export const pruneCommand = (): Command =>
  new Command("prune")
    .description("apply a job's retention: mark snapshots the policy no longer keeps, delete those marked longer than graceDays")
    .argument("<job>", "job name")
    .option("--dry-run", "show the plan and its reasons; change nothing")
    .option("--target <name>", "prune only this target (default: every target of the job)")
    .action(async (jobName: string, opts: { dryRun?: boolean; target?: string }, cmd: Command) => {
      const g = globals(cmd);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const result = await pruneJob(loaded, jobName, { dryRun: opts.dryRun, now: clock(), target: opts.target });
      if (!g.json)
        for (const t of result.targets) process.stderr.write(`using target "${t.target}" as pruner (credentials: ${t.credentials})\n`);
      print(g.json, { ...result, role: "pruner" }, () => render(result));
      const failed = result.targets.filter((t) => !t.ok);
      if (failed.length) {
        throw new LifeboatError(code.storage, `pruning failed on target(s) ${failed.map((t) => t.target).join(", ")}`, {
          hint: "see the errors above; whatever was not done is retried by the next prune",
        });
      }
    });

/**
 * The prune clock: now, unless LIFEBOAT_NOW (an ISO time, for tests of the grace period) says otherwise. Only prune
 * reads it. It cannot widen what a pruner credential may do: that credential can delete everything anyway.
 */
function clock(): Date {
  const fixed = process.env.LIFEBOAT_NOW;
  if (!fixed) return new Date();
  const t = new Date(fixed);
  if (Number.isNaN(t.getTime())) throw new LifeboatError(code.usage, `LIFEBOAT_NOW="${fixed}" is not an ISO time`);
  return t;
}

function render(r: PruneResult): string {
  if (r.skipped) return `${r.skipped} (add retention: {...} to the job's file)`;
  const lines: string[] = [];
  for (const t of r.targets) {
    lines.push(`prune ${r.job} on ${t.target}${r.dryRun ? " (dry run: nothing changed)" : ""}:`);
    for (const d of t.plan?.decisions ?? []) {
      const state = d.state === "complete" ? "" : ` [${d.state}]`;
      lines.push(`  ${d.snapshotId}  ${d.action.padEnd(7)} ${d.reasons.join("; ")}${state}`);
    }
    if (t.plan && t.plan.decisions.length === 0) lines.push("  no snapshots");
    for (const id of t.plan?.orphanTombstones ?? []) lines.push(`  ${id}  tombstone without snapshot: removed`);
    const a = t.applied;
    if (!r.dryRun && t.plan) {
      lines.push(`  marked ${a.marked.length}, deleted ${a.deleted.length}, unmarked ${a.unmarked.length}`);
    }
    for (const e of t.errors) lines.push(`  ERROR: ${e}`);
  }
  return lines.join("\n");
}
