import { Command } from "commander";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { restoreSnapshot } from "../drills/restore.ts";
import { roleUse } from "../pipeline/job.ts";
import { TerminalConfirmer } from "../safety/confirm.ts";
import { identityPath, loadIdentities } from "../safety/identity.ts";
import { snapshotIdArg } from "./args.ts";
import { duration, globals, print } from "./output.ts";
import { withSignals } from "./signals.ts";

/** `lifeboat restore <job> --to <dest>`: the guarded real restore. */
export const restoreCommand = (): Command =>
  new Command("restore")
    .description(
      "restore a snapshot into a database, SQLite file or directory; one that holds data needs a person to type its name at a terminal",
    )
    .argument("<job>", "job name")
    .requiredOption(
      "--to <destination>",
      "where to restore: a database URL (postgres://…, mysql://…), a file path (SQLite jobs) or a directory (volume jobs)",
    )
    .option("--snapshot <id>", "restore this snapshot (default: the newest complete one)")
    .option("--from <target>", "target to read from (default: the job's first target)")
    .option("--identity <file>", "age identity file (default $LIFEBOAT_IDENTITY_FILE)")
    .action(async (jobName: string, opts: { to: string; snapshot?: string; from?: string; identity?: string }, cmd: Command) => {
      const g = globals(cmd);
      snapshotIdArg(opts.snapshot, "--snapshot", jobName);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const identities = loadIdentities(identityPath(opts.identity));
      const result = await withSignals((signal) =>
        restoreSnapshot({
          loaded,
          job: jobName,
          to: opts.to,
          identities,
          snapshotId: opts.snapshot,
          from: opts.from,
          confirmer: new TerminalConfirmer(),
          signal,
          say: (l) => process.stderr.write(`${l}\n`),
        }),
      );
      const use = roleUse(loaded, [result.target], "reader");
      if (!g.json) for (const l of use.lines) process.stderr.write(`${l}\n`);
      print(
        g.json,
        { ...result, role: use.role, credentials: use.credentials },
        () => `restored snapshot ${result.snapshotId} of ${result.job} into ${result.destination} in ${duration(result.durationMs)}`,
      );
    });
