#!/usr/bin/env -S node --max-semi-space-size=1 --no-concurrent-marking
// The small young generation keeps a long streaming backup's memory flat (about 180 MB instead of 230+ for 1 GB):
// streams allocate short-lived buffers, and a chunk that waits through two scavenges (held up by a slow upload, say)
// is promoted, so its buffer outlives it until a full collection. With 2 MB instead of 1, about one backup in four
// fell into 7–38 full collections and peaked at 210–240 MB; with 1 MB, none of 11 did. Without concurrent marking,
// a backup no longer falls into runs of about 100 full collections that free nothing, which doubled the process's
// CPU in some runs (docs/BENCHMARK.md); the pauses of marking on the main thread do not matter to a CLI.
// Entry point: checks the Node version, then runs the TypeScript CLI through tsx, so users' backup.config.ts,
// jobs/*.ts and restore-drills/*.ts load without a build step.
// module.registerHooks, used below, came with 22.15 (and 23.5 on the 23 line); package.json's engines says the same.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 15) || (major === 23 && minor < 5)) {
  process.stderr.write(
    `lifeboat needs Node.js 22.15 or newer (23.5 or newer on the 23 line); this is ${process.version}.\n` +
      "hint: install Node 24 LTS (or run through `npm run`, which uses the Node 24 this repository installs).\n",
  );
  process.exit(2);
}
const { enableCompileCache, registerHooks } = await import("node:module");
// V8's code cache on disk (by default under the temp directory): every CLI call loads the AWS SDK, tsx and the config,
// and that start-up is wall time nothing else overlaps. It never fails a run; an unwritable folder just means no cache.
enableCompileCache?.();
const { register } = await import("tsx/esm/api");
register();
const index = new URL("../src/index.ts", import.meta.url).href;
const { readFileSync } = await import("node:fs");
const { fileURLToPath } = await import("node:url");
// Hooks registered last run first, so these see every import before tsx does.
registerHooks({
  // `import { defineJob } from "lifeboat"` must work in a config that lives anywhere, not only inside this package.
  resolve(specifier, context, next) {
    if (specifier === "lifeboat") return { url: index, shortCircuit: true, format: "module" };
    return next(specifier, context);
  },
  // tsx scans every JavaScript module it loads for module syntax; for the few hundred files of the SDKs, zod and the
  // age libraries that was about a third of each CLI call's start-up (docs/BENCHMARK.md). A dependency whose format
  // Node already settled from its extension or package.json "type" needs none of that and loads as Node would load
  // it; files of undecided format (a .js with no "type", where syntax detection applies) still go through tsx.
  load(url, context, next) {
    if (url.startsWith("file:") && url.includes("/node_modules/") && /\.[cm]?js$/.test(url)) {
      const { format } = context;
      if (format === "module" || format === "commonjs") return { format, source: readFileSync(fileURLToPath(url)), shortCircuit: true };
    }
    return next(url, context);
  },
});
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv);
