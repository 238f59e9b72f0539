import { Command } from "commander";
import { undeleteSnapshot } from "../catalog/prune.ts";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { code, LifeboatError, NotFoundError } from "../errors.ts";
import { globals, print } from "./output.ts";

/** `lifeboat undelete <job> <snapshot>`: removes a pruning mark, so the pending deletion does not happen. */
export const undeleteCommand = (): Command =>
  new Command("undelete")
    .description("take back a pruning mark: the snapshot is not deleted when the grace period ends")
    .argument("<job>", "job name")
    .argument("<snapshot>", "snapshot id")
    .option("--target <name>", "only on this target (default: every target of the job)")
    .action(async (jobName: string, snapshotId: string, opts: { target?: string }, cmd: Command) => {
      const g = globals(cmd);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const outcomes = await undeleteSnapshot(loaded, jobName, snapshotId, { target: opts.target });
      if (!g.json) for (const o of outcomes) process.stderr.write(`using target "${o.target}" as pruner (credentials: ${o.credentials})\n`);
      const ok = outcomes.some((o) => o.status === "unmarked") && outcomes.every((o) => o.status !== "error");
      print(g.json, { ok, job: jobName, snapshotId, role: "pruner", targets: outcomes }, () =>
        outcomes
          .map((o) => {
            const what = {
              unmarked: `mark removed (it was marked ${o.markedAt}); the next prune marks it again unless the policy keeps it`,
              "not-marked": "not marked for deletion: nothing to undo",
              gone: "already deleted: too late to undelete",
              error: `ERROR: ${o.error}`,
            }[o.status];
            return `${snapshotId} on ${o.target}: ${what}`;
          })
          .join("\n"),
      );
      const errors = outcomes.filter((o) => o.status === "error");
      if (errors.length) throw new LifeboatError(code.storage, errors.map((o) => `target "${o.target}": ${o.error}`).join("\n"));
      if (!outcomes.some((o) => o.status === "unmarked")) {
        throw new NotFoundError(`snapshot ${snapshotId} of ${jobName} is not marked for deletion on any target`, {
          hint: `see pending deletions with: lifeboat prune ${jobName} --dry-run`,
        });
      }
    });
