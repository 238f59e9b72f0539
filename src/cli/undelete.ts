import { Command } from "commander";
import { type UndeleteOutcome, undeleteSnapshot } from "../catalog/prune.ts";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { code, LifeboatError, NotFoundError } from "../errors.ts";
import { snapshotIdArg } from "./args.ts";
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
      snapshotIdArg(snapshotId, "<snapshot>", jobName);
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
              // Nothing is left of a snapshot a prune deleted, so "deleted" and "never taken" look the same here.
              gone: "no such snapshot here (never taken, or already deleted by a prune: too late to undelete)",
              deleting:
                "a prune already deleted its manifest (the deletion was interrupted): too late to undelete; its remaining objects go with the next prune",
              error: `ERROR: ${o.error}`,
            }[o.status];
            return `${snapshotId} on ${o.target}: ${what}`;
          })
          .join("\n"),
      );
      const errors = outcomes.filter((o) => o.status === "error");
      if (errors.length) throw new LifeboatError(code.storage, errors.map(targetError).join("\n"));
      if (outcomes.length > 0 && outcomes.every((o) => o.status === "gone")) {
        throw new NotFoundError(`no snapshot ${snapshotId} of job ${jobName} on target ${outcomes.map((o) => o.target).join(", ")}`, {
          hint: `list the snapshots with: lifeboat snapshots ${jobName} (a snapshot a prune deleted cannot be undeleted)`,
        });
      }
      const deleting = outcomes.filter((o) => o.status === "deleting");
      if (deleting.length && !outcomes.some((o) => o.status === "unmarked")) {
        throw new LifeboatError(
          code.failed,
          `snapshot ${snapshotId} of ${jobName} is being deleted on target ${deleting.map((o) => o.target).join(", ")}: its manifest is gone, too late to undelete`,
          {
            hint: "until the next prune finishes the deletion, its data and inventory objects are still there: copy them now to restore by hand (docs/RECOVERY.md)",
          },
        );
      }
      if (!outcomes.some((o) => o.status === "unmarked")) {
        throw new NotFoundError(`snapshot ${snapshotId} of ${jobName} is not marked for deletion on any target`, {
          hint: `see pending deletions with: lifeboat prune ${jobName} --dry-run`,
        });
      }
    });

/** A failed target's error, named once: errors from a target usually start with its name already. */
function targetError(o: UndeleteOutcome): string {
  const prefix = `target "${o.target}"`;
  return o.error?.startsWith(prefix) ? o.error : `${prefix}: ${o.error}`;
}
