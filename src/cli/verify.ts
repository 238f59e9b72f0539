import { Command } from "commander";
import { findSnapshot, listSnapshots } from "../catalog/snapshots.ts";
import { getJob, loadConfig, resolveConfigPath } from "../config/load.ts";
import { ConfigError, code, LifeboatError } from "../errors.ts";
import { openTarget, roleUse } from "../pipeline/job.ts";
import { type SnapshotCheck, verifySnapshot } from "../pipeline/restore.ts";
import { identityPath, loadIdentities } from "../safety/identity.ts";
import { snapshotIdArg } from "./args.ts";
import { bytes, globals, print } from "./output.ts";
import { withSignals } from "./signals.ts";

/** `lifeboat verify <job>`: integrity without restoring: hashes, every age tag, decompression. */
export const verifyCommand = (): Command =>
  new Command("verify")
    .description("check a snapshot's integrity without restoring: sha256, full decryption and decompression")
    .argument("<job>", "job name")
    .option("--snapshot <id>", "verify this snapshot (default: the newest complete one)")
    .option("--all", "verify every complete snapshot")
    .option("--target <name>", "target to read (default: the job's first target)")
    .option("--identity <file>", "age identity file (default $LIFEBOAT_IDENTITY_FILE)")
    .action(async (jobName: string, opts: { snapshot?: string; all?: boolean; target?: string; identity?: string }, cmd: Command) => {
      const g = globals(cmd);
      if (opts.snapshot && opts.all) throw new LifeboatError(code.usage, "use --snapshot or --all, not both");
      snapshotIdArg(opts.snapshot, "--snapshot", jobName);
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const job = getJob(loaded, jobName);
      const targetName = opts.target ?? (job.targets[0] as string);
      if (!job.targets.includes(targetName))
        throw new ConfigError(`job "${jobName}" does not ship to target "${targetName}"`, {
          hint: `use one of: ${job.targets.join(", ")}`,
        });
      const identities = loadIdentities(identityPath(opts.identity));
      const use = roleUse(loaded, [targetName], "reader");
      if (!g.json) for (const l of use.lines) process.stderr.write(`${l}\n`);
      const target = openTarget(loaded, targetName, "reader");
      const results: SnapshotCheck[] = [];
      try {
        await withSignals(async (signal) => {
          const manifests = opts.all
            ? (await listSnapshots(target, jobName)).complete
            : [await findSnapshot(target, jobName, opts.snapshot, (m) => process.stderr.write(`warning: ${m}\n`))];
          for (const m of manifests) {
            results.push(await verifySnapshot(target, m, identities, signal));
            if (!g.json) process.stdout.write(`${render(results.at(-1) as SnapshotCheck)}\n`);
          }
        });
      } finally {
        await target.close?.();
      }
      if (g.json)
        print(true, { ok: results.every((r) => r.ok), role: use.role, credentials: use.credentials, snapshots: results }, () => "");
      const bad = results.filter((r) => !r.ok);
      if (bad.length) {
        throw new LifeboatError(
          code.integrity,
          `${bad.length} snapshot(s) failed verification: ${bad.map((b) => b.snapshotId).join(", ")}`,
          {
            hint: "a corrupted snapshot cannot be trusted; take a new backup and check the storage",
          },
        );
      }
    });

function render(r: SnapshotCheck): string {
  const lines = [`snapshot ${r.snapshotId} on ${r.target}: ${r.ok ? "OK" : "CORRUPTED"}`];
  for (const o of r.objects) lines.push(`  ${o.ok ? "ok  " : "FAIL"} ${o.name}${o.ok ? ` (${bytes(o.bytes)} plaintext)` : `: ${o.error}`}`);
  return lines.join("\n");
}
