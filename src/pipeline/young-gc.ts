/**
 * A stream of N bytes allocates about 2N of short-lived buffers (reads of zstd's output, cipher output, downloads).
 * They die young, but their memory lies outside V8's heap, and V8 collects young objects only when its young heap
 * (a few MB of JS objects, which streams of large buffers fill slowly) is full. External memory then reaches V8's
 * limit first and forces a full mark-compact each time: about 10 a second, which doubled the CPU of lifeboat's process
 * in about half the benchmark runs (docs/BENCHMARK.md). A minor collection every 16 MiB frees those buffers for about
 * a millisecond each. Only when the process runs with --expose-gc, as bin/lifeboat.js starts it.
 */
const EVERY = 16 * 1024 * 1024;

type MinorGc = (options: { type: "minor" }) => void;

/** Returns a function to call with the running byte count of a stream; it collects the young generation as needed. */
export function youngCollector(every = EVERY): (total: number) => void {
  const gc = (globalThis as { gc?: MinorGc }).gc;
  if (typeof gc !== "function") return () => {};
  let next = every;
  return (total) => {
    if (total < next) return;
    next = total + every;
    gc({ type: "minor" });
  };
}
