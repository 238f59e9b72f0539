import { Command } from "commander";
import { listSnapshots } from "../catalog/snapshots.ts";
import { getJob, loadConfig, resolveConfigPath } from "../config/load.ts";
import { ConfigError } from "../errors.ts";
import { openTarget, roleUse } from "../pipeline/job.ts";
import { bytes, duration, globals, print } from "./output.ts";

/** `lifeboat snapshots <job>`: lists complete snapshots, newest first, read from the target alone. */
export const snapshotsCommand = (): Command =>
  new Command("snapshots")
    .description("list a job's complete snapshots, newest first, read from the target")
    .argument("<job>", "job name")
    .option("--target <name>", "target to read (default: the job's first target)")
    .action(async (jobName: string, opts: { target?: string }, cmd: Command) => {
      const g = globals(cmd);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const job = getJob(loaded, jobName);
      const targetName = opts.target ?? (job.targets[0] as string);
      if (!job.targets.includes(targetName)) {
        throw new ConfigError(`job "${jobName}" does not ship to target "${targetName}"`, {
          hint: `use one of: ${job.targets.join(", ")}`,
        });
      }
      const use = roleUse(loaded, [targetName], "reader");
      if (!g.json) for (const l of use.lines) process.stderr.write(`${l}\n`);
      const target = openTarget(loaded, targetName, "reader");
      try {
        const listing = await listSnapshots(target, jobName);
        const now = Date.now();
        const rows = listing.complete.map((m) => ({
          snapshotId: m.snapshotId,
          finishedAt: m.finishedAt,
          ageMs: now - Date.parse(m.finishedAt),
          storedBytes: m.artifacts.reduce((s, a) => s + a.size, 0) + m.inventory.size,
          rawBytes: m.artifacts.reduce((s, a) => s + a.rawBytes, 0),
          counts: m.inventory.counts,
          warnings: m.warnings.length,
        }));
        const out = { job: jobName, target: targetName, role: use.role, credentials: use.credentials, snapshots: rows };
        print(g.json, { ...out, incomplete: listing.incomplete, broken: listing.broken }, () => {
          const lines =
            rows.length === 0
              ? [
                  `no complete snapshots of ${jobName} on ${targetName}${listing.incomplete.length ? ` (${listing.incomplete.length} incomplete)` : ""}`,
                ]
              : [`snapshots of ${jobName} on ${targetName} (newest first):`];
          for (const r of rows) {
            lines.push(
              `  ${r.snapshotId}  ${r.finishedAt}  ${(r.ageMs < 0 ? `${duration(-r.ageMs)} ahead` : `${duration(r.ageMs)} ago`).padStart(13)}  ${bytes(r.storedBytes).padStart(10)} stored  ${bytes(r.rawBytes).padStart(10)} raw`,
            );
          }
          if (listing.incomplete.length && rows.length)
            lines.push(
              `  (${listing.incomplete.length} incomplete run(s) without manifest: ${listing.incomplete.slice(0, 3).join(", ")}…)`,
            );
          for (const b of listing.broken) lines.push(`  BROKEN ${b.snapshotId}: ${b.error}`);
          return lines.join("\n");
        });
      } finally {
        await target.close?.();
      }
    });
