import { Command } from "commander";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { createLogger, type Logger } from "../daemon/log.ts";
import { code, LifeboatError } from "../errors.ts";
import { loadIdentities } from "../safety/identity.ts";
import { killChildren } from "./children.ts";
import { alreadyLogged, exitCodeFor, isLogged } from "./exit.ts";
import { globals } from "./output.ts";

/**
 * `lifeboat daemon [--identity FILE]`: runs every job and drill on its schedule until SIGTERM or SIGINT. Exit 0 when
 * shutdown was clean, 1 when runs had to be aborted at the end of the grace period, 2 for invalid config.
 */
export const daemonCommand = (): Command =>
  new Command("daemon")
    .description("run every job and drill on its cron schedule, serve /metrics and /healthz, notify on failures (stop with SIGTERM)")
    .option("--identity <file>", "age identity file for drills (default $LIFEBOAT_IDENTITY_FILE; without one drills are skipped)")
    .action(async (opts: { identity?: string }, cmd: Command) => {
      const g = globals(cmd);
      // Decided here rather than left to the logger: the final error must be written the same way as the log lines.
      const jsonLog = g.json === true || process.stderr.isTTY !== true;
      const log = createLogger({ json: jsonLog });
      try {
        await daemonRun(opts, g.config, log);
      } catch (err) {
        if (!jsonLog || !(err instanceof Error) || isLogged(err)) throw err;
        // A log shipper reading JSON lines would get stray text lines at the very end, the ones that matter: a bad
        // config, identity, schedule or port as much as a shutdown that had to abort runs.
        const e = err instanceof LifeboatError ? err : undefined;
        log.error("daemon.failed", { error: err.message, hint: e?.hint, code: e?.code, exitCode: exitCodeFor(err) });
        throw alreadyLogged(err);
      }
    });

async function daemonRun(opts: { identity?: string }, config: string | undefined, log: Logger): Promise<void> {
  const loaded = await loadConfig(resolveConfigPath(config));
  const file = opts.identity ?? process.env.LIFEBOAT_IDENTITY_FILE;
  // Checked at start: a bad identity file should stop the daemon now, not fail every drill at 4 a.m.
  const identities = file ? loadIdentities(file) : undefined;
  const ac = new AbortController();
  let signals = 0;
  const onStop = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      const killed = killChildren();
      log.error("daemon.exit-now", { signal: sig, error: "second signal: exiting without waiting for runs to clean up", killed });
      process.exit(130);
    }
    ac.abort(new Error(`received ${sig}`));
  };
  // The config is read once; a reload would have to re-import TypeScript modules, which Node caches for the life of
  // the process. So SIGHUP (which would otherwise kill the process) only says what to do instead.
  const onHup = () => log.warn("daemon.reload-unsupported", { error: "config changes need a restart", hint: "systemctl restart lifeboat" });
  process.on("SIGTERM", onStop);
  process.on("SIGINT", onStop);
  process.on("SIGHUP", onHup);
  try {
    // Loaded here: the daemon's scheduler and metrics (node-cron, prom-client) are start-up cost for every other command.
    const { runDaemon } = await import("../daemon/daemon.ts");
    const result = await runDaemon({ loaded, identities, signal: ac.signal, log });
    if (result.aborted.length) {
      const err = new LifeboatError(
        code.aborted,
        `shutdown aborted run(s) still going after the grace period: ${result.aborted.join(", ")}`,
        {
          hint: "raise daemon.shutdownGraceSeconds to let runs finish; aborted backups left no partial snapshot",
        },
      );
      throw err;
    }
  } finally {
    process.off("SIGTERM", onStop);
    process.off("SIGINT", onStop);
    process.off("SIGHUP", onHup);
  }
}
