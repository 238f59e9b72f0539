import { existsSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { ConfigError } from "../errors.ts";

/** A job as the device rule sees it: its source (only volumes matter) and the names of its targets. */
export interface DeviceRuleJob {
  name: string;
  /** The file that declared the job, for messages. */
  file?: string;
  source: { type: string; path?: string };
  targets: readonly string[];
}

/** A target as the device rule sees it: only filesystem targets have a path. */
export interface DeviceRuleTarget {
  type: string;
  path?: string;
}

/** A filesystem target that would fail together with the volume it backs up. */
export interface DeviceViolation {
  job: string;
  file?: string;
  target: string;
  targetPath: string;
  sourcePath: string;
  /** "same-device": both on one st_dev; "nested": one directory inside the other. */
  why: "same-device" | "nested";
  /** st_dev shown as major:minor. */
  device: string;
  /** The existing path whose device was read for the target (its nearest existing ancestor if it does not exist yet). */
  statted: string;
}

/** Where a path lives: its st_dev, read from the path or (if it does not exist yet) its nearest existing ancestor. */
export interface PathDevice {
  dev: bigint;
  /** The existing path that was stat'ed. */
  statted: string;
  /** The path with symlinks resolved as far as it exists, for containment checks. */
  real: string;
}

/** Reads the device of a path, or of its nearest existing ancestor: a target directory is often created on first use. */
export function deviceOf(path: string): PathDevice {
  let existing = resolve(path);
  const rest: string[] = [];
  while (!existsSync(existing)) {
    const parent = dirname(existing);
    if (parent === existing) break;
    rest.unshift(basename(existing));
    existing = parent;
  }
  const dev = statSync(existing, { bigint: true }).dev;
  return { dev, statted: existing, real: join(realpathSync(existing), ...rest) };
}

/** A device number as "major:minor" (Linux encoding of st_dev). */
export function formatDevice(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * Finds every filesystem target that shares a device with a volume source it backs up, or that lies inside that
 * volume (or holds it). Such a copy dies with the disk it protects, whatever the boundary labels say. A volume
 * whose path does not exist on this host (a restore host, say) is skipped: there is nothing here to compare, and
 * the backup itself fails clearly where it does not exist.
 */
export function findDeviceViolations(jobs: Iterable<DeviceRuleJob>, targets: Record<string, DeviceRuleTarget>): DeviceViolation[] {
  const out: DeviceViolation[] = [];
  for (const job of jobs) {
    const sourcePath = job.source.path;
    if (job.source.type !== "volume" || !sourcePath || !existsSync(sourcePath)) continue;
    const source = deviceOf(sourcePath);
    for (const name of job.targets) {
      const t = targets[name];
      if (t?.type !== "filesystem" || !t.path) continue;
      const target = deviceOf(t.path);
      const base = { job: job.name, file: job.file, target: name, targetPath: t.path, sourcePath, statted: target.statted };
      if (within(target.real, source.real) || within(source.real, target.real)) {
        out.push({ ...base, why: "nested", device: formatDevice(target.dev) });
      } else if (target.dev === source.dev) {
        out.push({ ...base, why: "same-device", device: formatDevice(target.dev) });
      }
    }
  }
  return out;
}

/** Throws one ConfigError naming every violation of the device rule (see findDeviceViolations); returns if none. */
export function checkVolumeDevices(jobs: Iterable<DeviceRuleJob>, targets: Record<string, DeviceRuleTarget>): void {
  const violations = findDeviceViolations(jobs, targets);
  if (violations.length === 0) return;
  const lines = violations.map((v) => {
    const where = `${v.file ? `${v.file}: ` : ""}targets: job "${v.job}" ships volume ${v.sourcePath} to target "${v.target}" (${v.targetPath})`;
    if (v.why === "nested") return `${where}, and one directory lies inside the other`;
    const via = v.statted === resolve(v.targetPath) ? "" : ` (read from ${v.statted}, as ${v.targetPath} does not exist yet)`;
    return `${where}, which is on the same device ${v.device}${via}`;
  });
  throw new ConfigError(lines.join("\n"), {
    hint:
      "a copy on the disk it protects dies with it, whatever the boundary labels say: store volume backups on another device or host " +
      "(if the target is a mount such as a NAS, check that it is mounted: an unmounted mount point lies on the local disk)",
  });
}

function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
