/** Time as the daemon sees it: injected, so tests fix "now" and skip waits instead of sleeping (DESIGN.md). */
export interface Clock {
  /** The current time. */
  now(): Date;
  /**
   * Waits ms milliseconds. Resolves early, without rejecting, when signal aborts: callers check the signal afterwards,
   * so a shutdown never surfaces as an error from a sleep.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: Date and timers. */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
    }),
};
