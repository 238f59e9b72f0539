import { Command } from "commander";
import type { DrillRecord } from "../catalog/drill-record.ts";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { runDrill } from "../drills/runner.ts";
import { code, LifeboatError, wrap } from "../errors.ts";
import { roleUse } from "../pipeline/job.ts";
import { identityPath, loadIdentities } from "../safety/identity.ts";
import { snapshotIdArg } from "./args.ts";
import { alreadyLogged } from "./exit.ts";
import { duration, globals, print, progressLine } from "./output.ts";
import { withSignals } from "./signals.ts";

/** `lifeboat drill <name> | --all`: restores snapshots into scratch, checks them and records the evidence. */
export const drillCommand = (): Command =>
  new Command("drill")
    .description("restore a job's newest snapshot into a fresh scratch database or directory, check it, record the evidence")
    .argument("[drill]", "drill name (the name field of a drill in restore-drills/)")
    .option("--all", "run every drill")
    .option("--snapshot <id>", "restore this snapshot instead of the newest complete one")
    .option("--identity <file>", "age identity file (default $LIFEBOAT_IDENTITY_FILE)")
    .action(async (name: string | undefined, opts: { all?: boolean; snapshot?: string; identity?: string }, cmd: Command) => {
      const g = globals(cmd);
      if (!name && !opts.all) throw new LifeboatError(code.usage, "name a drill or pass --all", { hint: "lifeboat drill <name> | --all" });
      if (name && opts.all) throw new LifeboatError(code.usage, "name a drill or pass --all, not both");
      if (opts.all && opts.snapshot) throw new LifeboatError(code.usage, "--snapshot goes with one named drill, not --all");
      snapshotIdArg(opts.snapshot, "--snapshot");
      const loaded = await loadConfig(resolveConfigPath(g.config));
      const identities = loadIdentities(identityPath(opts.identity));
      const names = opts.all ? [...loaded.drills.keys()] : [name as string];
      if (names.length === 0)
        throw new LifeboatError(code.config, "restore-drills/ declares no drills", {
          hint: "add restore-drills/<name>.ts with export default defineDrill({...})",
        });
      const results: { record: DrillRecord; recordError?: string }[] = [];
      // With --all, a drill that cannot run (refused, misconfigured, its target unreachable) does not keep the others
      // from running; the first such error still decides the exit code once all have run.
      const stopped: { drill: string; error: LifeboatError }[] = [];
      const progress = progressLine(!g.json);
      await withSignals(async (signal) => {
        for (const n of names) {
          let outcome: Awaited<ReturnType<typeof runDrill>>;
          try {
            outcome = await runDrill({
              loaded,
              drill: n,
              identities,
              snapshotId: opts.snapshot,
              signal,
              onPhase: (p, d) => progress.update(`drill ${n}: ${p}${d ? ` ${d}` : ""}`),
              onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
            });
          } catch (err) {
            progress.done();
            if (!opts.all || signal.aborted) throw err;
            const error = wrap(`drill ${n}`, err);
            stopped.push({ drill: n, error });
            if (!g.json) process.stderr.write(`error: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`);
            continue;
          }
          results.push(outcome);
          progress.done();
          if (!g.json) process.stderr.write(`${roleUse(loaded, [results.at(-1)?.record.target ?? ""], "reader").lines.join("\n")}\n`);
          if (!g.json) process.stdout.write(`${render(results.at(-1) as (typeof results)[number])}\n`);
        }
      });
      const use = roleUse(loaded, [...new Set(results.map((r) => r.record.target))], "reader");
      const ok = stopped.length === 0 && results.every((r) => r.record.verdict === "pass" && !r.recordError);
      const errors = stopped.map((x) => ({ drill: x.drill, code: x.error.code, message: x.error.message, hint: x.error.hint }));
      if (g.json)
        print(true, { ok, role: use.role, credentials: use.credentials, drills: results, ...(errors.length ? { errors } : {}) }, () => "");
      const first = stopped[0];
      if (first) {
        const others = stopped.length > 1 ? ` (and ${stopped.length - 1} more drill(s) that could not run)` : "";
        throw alreadyLogged(new LifeboatError(first.error.code, `${first.error.message}${others}`, { hint: first.error.hint }));
      }
      const failed = results.filter((r) => r.record.verdict !== "pass").map((r) => r.record.drill);
      if (failed.length)
        throw new LifeboatError(code.failed, `drill(s) failed: ${failed.join(", ")}`, {
          hint: "see the failed checks above; the record is stored on the target",
        });
      const unrecorded = results.filter((r) => r.recordError);
      if (unrecorded.length)
        throw new LifeboatError(code.storage, unrecorded.map((r) => r.recordError).join("\n"), {
          hint: "the drill passed but its evidence is not stored",
        });
    });

function render({ record: r, recordError }: { record: DrillRecord; recordError?: string }): string {
  const timings = `fetch ${duration(r.timings.fetchMs)}, restore ${duration(r.timings.restoreMs)}, checks ${duration(r.timings.checksMs)}; RTO ${duration(r.rtoMs)}`;
  const lines = [
    `drill ${r.drill}: ${r.verdict === "pass" ? "PASS" : "FAIL"} — job ${r.job}, snapshot ${r.snapshotId} from ${r.target}`,
    // Checks run only on a finished restore; without any, an error stopped the drill before or during it.
    r.scratch.location === "(not created)"
      ? "  nothing was restored: the drill stopped before it created a scratch place"
      : r.checks.length > 0 || !r.error
        ? `  restored into ${r.scratch.location} (dropped); ${timings}`
        : `  the restore into ${r.scratch.location} did not finish (scratch dropped); it failed after fetch ${duration(r.timings.fetchMs)}, restore ${duration(r.timings.restoreMs)}`,
  ];
  if (r.error) lines.push(`  error: ${r.error}`);
  for (const c of r.checks) {
    const exp = c.expected !== undefined ? ` expected ${JSON.stringify(c.expected)}` : "";
    // The mismatch lines below list what a long result holds; the headline only says how much.
    const act = c.actual === undefined ? "" : ` found ${shortJson(c.actual, c.mismatches?.length ? 60 : 200)}`;
    lines.push(`  ${c.ok ? "ok  " : "FAIL"} ${c.kind}: ${c.name}${c.ok ? "" : `${exp}${act}`}${c.detail ? ` — ${c.detail}` : ""}`);
    for (const m of (c.mismatches ?? []).slice(0, 20))
      lines.push(`       ${m.item}: expected ${JSON.stringify(m.expected)}, found ${JSON.stringify(m.actual)}`);
    if ((c.mismatches?.length ?? 0) > 20) lines.push(`       … and ${(c.mismatches?.length ?? 0) - 20} more`);
  }
  lines.push(recordError ? `  WARNING: ${recordError}` : `  evidence: ${r.job}/drills/${r.runId}.json on ${r.target}`);
  return lines.join("\n");
}

function shortJson(value: unknown, max: number): string {
  const text = JSON.stringify(value);
  if (text.length <= max) return text;
  return Array.isArray(value) ? `${value.length} items` : `${text.slice(0, max)}…`;
}
