import { mkdir, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { abortedError, ConfigError, code, LifeboatError, messageOf, RefusedError } from "../errors.ts";
import type { ScratchContext } from "./kind.ts";

/** The real path of a file or directory; for a missing one, its nearest existing ancestor's real path plus the rest. */
export async function realPath(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(await realPath(parent), basename(abs));
  }
}

/** Whether inner is outer or lies inside it (paths already real). */
export function isInside(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** How a kind describes and guards its scratch directory. */
export interface ScratchDirRules {
  /** The source kind, for messages ("sqlite", "volume"). */
  kind: string;
  /** Where to put scratch.directory, for the hint when it is not set. */
  placeHint: string;
  /** A reason the directory would touch the source (then it is refused), or undefined. */
  overlap(dir: string): Promise<string | undefined>;
  /** The fix for an overlap. */
  overlapHint: string;
}

/**
 * Creates the fresh scratch directory `<scratch.directory>/lifeboat_drill_<job>_<runId>` (mode 0700: it holds
 * restored data) for a drill that restores into files. Rejects with ConfigError when scratch.directory is unset,
 * RefusedError when the directory would touch the source, and never reuses an existing directory.
 */
export async function createScratchDir(ctx: ScratchContext, rules: ScratchDirRules): Promise<string> {
  const { config, job, runId, signal } = ctx;
  if (signal.aborted) throw abortedError(`drill of job "${job.name}"`, signal);
  if (job.source.type !== rules.kind) {
    throw new ConfigError(`job "${job.name}": a ${rules.kind} drill needs a ${rules.kind} source, not ${job.source.type}`);
  }
  const parent = config.scratch.directory;
  if (!parent) {
    throw new ConfigError(`job "${job.name}": drills of ${rules.kind} jobs restore into scratch.directory, which is not set`, {
      hint: `set scratch: { directory: "/var/tmp/lifeboat-scratch" } in backup.config.ts (${rules.placeHint})`,
    });
  }
  // The run id becomes a path component: anything but a plain token could climb out of scratch.directory.
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw new LifeboatError(code.failed, `drill run id "${runId}" is not a plain token`);
  const dir = join(await realPath(parent), `lifeboat_drill_${job.name}_${runId}`);
  const overlap = await rules.overlap(dir);
  if (overlap) throw new RefusedError(`job "${job.name}": ${overlap}`, { hint: rules.overlapHint });
  try {
    await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
    // Not recursive: an existing directory of that name is an error, so the scratch place is always fresh.
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    throw new LifeboatError(code.failed, `job "${job.name}": create scratch directory ${dir}: ${messageOf(err)}`, {
      cause: err,
      hint: "check that scratch.directory is writable",
    });
  }
  return dir;
}
