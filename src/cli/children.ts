import type { ChildProcess } from "node:child_process";
import { subscribe } from "node:diagnostics_channel";

// Node announces every child process it creates on the "child_process" channel. Listening here, at the top of the
// layering, sees pg_dump, zstd, mysql and the rest without sources or pipeline having to register anything.
const live = new Set<ChildProcess>();
subscribe("child_process", (message) => {
  const child = (message as { process?: ChildProcess }).process;
  if (!child) return;
  live.add(child);
  child.once("exit", () => live.delete(child));
  child.once("error", () => {
    if (child.pid === undefined) live.delete(child);
  });
});

/**
 * Kills (SIGKILL) every child process this process started that is still running: for an exit that will not wait
 * for them (a second Ctrl-C). Without it they would outlive lifeboat, reparented to init, a pg_dump still holding
 * its snapshot open. Synchronous, so it can run right before process.exit.
 */
export function killChildren(): number {
  let n = 0;
  for (const child of live) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      if (child.kill("SIGKILL")) n++;
    } catch {}
  }
  return n;
}
