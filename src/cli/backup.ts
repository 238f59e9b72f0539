import { Command } from "commander";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { code, LifeboatError } from "../errors.ts";
import { backupJob, roleUse } from "../pipeline/job.ts";
import { bytes, duration, globals, print, progressLine } from "./output.ts";
import { withSignals } from "./signals.ts";

/** `lifeboat backup <job>`: takes a snapshot now and ships it to every target of the job. */
export const backupCommand = (): Command =>
  new Command("backup")
    .description("take a snapshot of a job now and ship it to every target of the job")
    .argument("<job>", "job name (the name field of a job in jobs/, not its file name)")
    .action(async (jobName: string, _opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const use = roleUse(loaded, loaded.jobs.get(jobName)?.targets ?? [], "writer");
      if (!g.json) for (const l of use.lines) process.stderr.write(`${l}\n`);
      const progress = progressLine(!g.json);
      const result = await withSignals((signal) =>
        backupJob(loaded, jobName, {
          signal,
          onProgress: (p) =>
            progress.update(
              `backing up ${jobName}: ${p.rawBytes === undefined ? "" : `${bytes(p.rawBytes)} read, `}${bytes(p.storedBytes)} stored (${p.phase})`,
            ),
        }),
      ).finally(() => progress.done());
      print(g.json, { ...result, role: use.role, credentials: use.credentials }, () => {
        const lines = [
          `snapshot ${result.snapshotId} of ${result.job}`,
          `  ${bytes(result.rawBytes)} dumped, ${bytes(result.compressedBytes)} compressed (${ratio(result.rawBytes, result.compressedBytes)}), ${bytes(result.storedBytes)} stored, in ${duration(result.durationMs)}`,
          ...result.targets.map((t) => `  target ${t.target}: ${t.ok ? "ok" : `FAILED: ${t.error}`}`),
          ...result.warnings.map((w) => `  warning: ${w}`),
        ];
        return lines.join("\n");
      });
      if (!result.ok) {
        const failed = result.targets.filter((t) => !t.ok).map((t) => t.target);
        throw new LifeboatError(code.storage, `snapshot ${result.snapshotId} is missing on target(s) ${failed.join(", ")}`, {
          hint: "the other targets hold a complete copy; fix the failing target and run the backup again",
        });
      }
    });

function ratio(raw: number, compressed: number): string {
  return compressed > 0 ? `${(raw / compressed).toFixed(1)}:1` : "n/a";
}
