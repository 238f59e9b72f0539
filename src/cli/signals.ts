import { killChildren } from "./children.ts";

/**
 * Runs work with an AbortSignal that fires on SIGINT or SIGTERM, so child processes, uploads and scratch
 * databases are released before the process exits. A second signal exits at once, killing the child processes
 * first: they would otherwise run on without anyone to stop them.
 */
export async function withSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    count++;
    if (count > 1) {
      killChildren();
      process.exit(130);
    }
    process.stderr.write(`\nreceived ${sig}: stopping and cleaning up (send again to exit at once)\n`);
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await work(ac.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
