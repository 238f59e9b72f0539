import type { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Manifest, manifestSchema } from "../catalog/manifest.ts";
import { makeSnapshotId } from "../catalog/snapshot-id.ts";
import type { Config, Job } from "../config/schema.ts";
import { code, LifeboatError, messageOf, wrap } from "../errors.ts";
import { redact } from "../secret.ts";
import type { Dump, Source } from "../sources/source.ts";
import { INVENTORY, MANIFEST, snapshotKey, snapshotPrefix } from "../storage/layout.ts";
import { snapshotRetention } from "../storage/s3.ts";
import { putBuffer, type Target } from "../storage/target.ts";
import { VERSION } from "../version.ts";
import { createEncryptStream, encryptBuffer } from "./age.ts";
import { compressDump } from "./compress.ts";
import { FanOut } from "./fanout.ts";
import { Meter } from "./measure.ts";

/** Progress of a running backup, for a progress line. */
export interface BackupProgress {
  phase: "dump" | "inventory" | "manifest";
  /** Undefined while zstd reads the dump tool's output itself (lifeboat then learns the size at the end). */
  rawBytes?: number;
  storedBytes: number;
}

/** What runBackup needs. */
export interface BackupOptions {
  job: Job;
  config: Config;
  source: Source;
  /** The job's targets, already constructed, in the job's order. */
  targets: Target[];
  signal?: AbortSignal;
  /** Injected clock. */
  now?: () => Date;
  onProgress?: (p: BackupProgress) => void;
}

/** The outcome for one target. */
export interface TargetOutcome {
  target: string;
  ok: boolean;
  /** Why this target failed (the others may still have succeeded). */
  error?: string;
  manifest?: Manifest;
}

/** The outcome of a backup. `ok` only when every target holds a complete snapshot. */
export interface BackupResult {
  job: string;
  snapshotId: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  rawBytes: number;
  compressedBytes: number;
  storedBytes: number;
  warnings: string[];
  targets: TargetOutcome[];
  ok: boolean;
}

/**
 * Takes one snapshot: dump → zstd → age → sha256 → every target, as one stream. The manifest is written last and
 * only to targets that stored everything; a failed dump writes no manifest anywhere and rejects.
 */
export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  const now = opts.now ?? (() => new Date());
  const started = now();
  const { job, config, targets } = opts;
  const ac = new AbortController();
  const onAbort = () => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const failures = new Map<number, string>();
  /** The error behind a target's failure, where there is one: it carries the hint. */
  const causes = new Map<number, unknown>();
  try {
    // The dump starts while the snapshot id is chosen and the age header is made: the source's start (a connection,
    // a snapshot export, the dump tool's own start-up) and a LIST on every target would otherwise queue up in front
    // of the dump, where nothing overlaps them.
    const starting = opts.source.dump(ac.signal).then(observe, (err) => {
      throw wrap(`job "${job.name}": start dump`, err, code.source);
    });
    starting.catch(() => {});
    const [snapshotId, encrypt] = await Promise.all([
      unusedSnapshotId(targets, job.name, started),
      createEncryptStream(config.encryption.recipients),
    ]).catch(async (err: unknown) => {
      ac.abort(err);
      // The dump tool and its session end before this backup reports.
      await starting.then((s) => s.done).catch(() => {});
      throw err;
    });
    const { dump, inventory, done } = await starting;
    const dataName = `${dump.artifact}.zst.age`;
    const zstd = compressDump(dump, config.compression.level);
    const compressed = new Meter();
    const stored = new Meter({
      hash: true,
      onBytes: (n) => opts.onProgress?.({ phase: "dump", rawBytes: zstd.progress(), storedBytes: n }),
    });
    const fan = new FanOut(targets.length);
    const puts = targets.map((t, i) =>
      t.put(snapshotKey(job.name, snapshotId, dataName), fan.branches[i] as PassThrough, { signal: ac.signal }).then(
        (obj) => obj,
        (err: unknown) => {
          failures.set(i, messageOf(err));
          causes.set(i, err);
          fan.detach(i, err instanceof Error ? err : new Error(String(err)));
          return undefined;
        },
      ),
    );
    try {
      await pipeline(zstd.stream, compressed, encrypt, stored, fan);
    } catch (err) {
      ac.abort(err);
      await Promise.allSettled(puts);
      const d = await done;
      // The dump tool's own message says more than "premature close", unless the dump only stopped because this
      // backup aborted it over err (a target that failed, say).
      const stoppedByUs = !d.ok && d.e instanceof LifeboatError && d.e.code === code.aborted && !opts.signal?.aborted;
      throw wrap(
        `job "${job.name}": backup`,
        d.ok || stoppedByUs ? (failures.size === targets.length ? allFailed(failures, targets, causes) : err) : d.e,
        code.source,
      );
    }
    const storedObjs = await Promise.all(puts);
    const d = await done;
    if (!d.ok) throw wrap(`job "${job.name}": dump`, d.e, code.source);
    const digest = stored.digest();
    storedObjs.forEach((o, i) => {
      if (o && o.size !== stored.bytes && !failures.has(i)) {
        failures.set(i, `stored ${o.size} bytes of ${stored.bytes}`);
      }
    });
    if (failures.size === targets.length) throw wrap(`job "${job.name}": upload`, allFailed(failures, targets, causes), code.storage);

    opts.onProgress?.({ phase: "inventory", rawBytes: zstd.rawBytes(), storedBytes: stored.bytes });
    const inv = await inventory;
    if (!inv.ok) throw wrap(`job "${job.name}": inventory`, inv.e, code.source);
    const invSealed = await encryptBuffer(config.encryption.recipients, JSON.stringify(inv.v));
    const { createHash } = await import("node:crypto");
    const invSha = createHash("sha256").update(invSealed).digest("hex");
    await Promise.all(
      targets.map(async (t, i) => {
        if (failures.has(i)) return;
        try {
          await putBuffer(t, snapshotKey(job.name, snapshotId, INVENTORY), invSealed, { signal: ac.signal });
        } catch (err) {
          failures.set(i, `upload inventory: ${messageOf(err)}`);
        }
      }),
    );

    opts.onProgress?.({ phase: "manifest", rawBytes: zstd.rawBytes(), storedBytes: stored.bytes });
    const finished = now();
    const warnings = d.v.warnings.map((w) => redact(w));
    const outcomes: TargetOutcome[] = await Promise.all(
      targets.map(async (t, i): Promise<TargetOutcome> => {
        if (failures.has(i)) return { target: t.name, ok: false, error: failures.get(i) };
        const lock = snapshotRetention(config.targets[t.name], snapshotId, finished);
        const manifest: Manifest = manifestSchema.parse({
          format: "lifeboat-snapshot",
          version: 1,
          job: job.name,
          snapshotId,
          target: t.name,
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          source: { kind: opts.source.kind, boundary: job.source.boundary, details: d.v.details ?? {} },
          encryption: { scheme: "age", recipients: config.encryption.recipients },
          compression: { scheme: "zstd", level: config.compression.level },
          artifacts: [
            {
              name: dataName,
              size: stored.bytes,
              sha256: digest,
              format: dump.format,
              encoding: ["age", "zstd"],
              rawBytes: zstd.rawBytes(),
              compressedBytes: compressed.bytes,
              producer: d.v.tool,
            },
          ],
          inventory: { name: INVENTORY, size: invSealed.length, sha256: invSha, counts: inv.v.counts },
          warnings,
          lock: lock && { mode: lock.mode, retainUntil: lock.retainUntil.toISOString() },
          tool: { name: "lifeboat", version: VERSION },
        });
        try {
          await putBuffer(t, snapshotKey(job.name, snapshotId, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { signal: ac.signal });
          return { target: t.name, ok: true, manifest };
        } catch (err) {
          return { target: t.name, ok: false, error: `upload manifest: ${messageOf(err)}` };
        }
      }),
    );
    return {
      job: job.name,
      snapshotId,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      rawBytes: zstd.rawBytes(),
      compressedBytes: compressed.bytes,
      storedBytes: stored.bytes,
      warnings,
      targets: outcomes,
      ok: outcomes.every((o) => o.ok),
    };
  } catch (err) {
    // Stops the dump tool and any upload still running; targets remove what they had not finished.
    ac.abort(err);
    throw err;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

type Settled<T> = { ok: true; v: T } | { ok: false; e: unknown };
const settled = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );

/**
 * Watches a dump from the moment it starts, while the rest of the backup gets ready: a failure of its stream, its
 * inventory or its end must be neither an uncaught error nor an unhandled rejection before the pipeline listens.
 */
function observe(dump: Dump) {
  // Not the stream of a dump that can hand its pipe to zstd: that stream is made on first read, and reading it here
  // would push every raw byte through Node (docs/BENCHMARK.md). The pipeline still sees a stored error.
  if (!dump.handOff) dump.stream.on("error", () => {});
  return { dump, inventory: settled(dump.inventory), done: settled(dump.done) };
}

function allFailed(failures: Map<number, string>, targets: Target[], causes: Map<number, unknown>): LifeboatError {
  const only = causes.get(0);
  // One target: its own error, with its hint.
  if (targets.length === 1 && only instanceof LifeboatError) return only;
  const lines = targets.map((t, i) => {
    const why = failures.get(i) ?? "failed";
    const own = `target "${t.name}": `;
    return why.startsWith(own) ? why : `${own}${why}`;
  });
  return new LifeboatError(code.storage, `every target failed:\n  ${lines.join("\n  ")}`);
}

/**
 * A snapshot id no target holds objects under yet. Two backups of a job in the same second draw their 4 random hex
 * digits independently; the same draw would make both write one snapshot. A target that cannot be listed is not
 * asked (its put will fail and say why).
 */
export async function unusedSnapshotId(
  targets: readonly Target[],
  job: string,
  started: Date,
  make: (at: Date) => string = makeSnapshotId,
): Promise<string> {
  let id = make(started);
  for (let attempt = 0; attempt < 5; attempt++) {
    const taken = await Promise.all(
      targets.map(async (t) => {
        try {
          for await (const _ of t.list(snapshotPrefix(job, id))) return true;
        } catch {}
        return false;
      }),
    );
    if (!taken.includes(true)) return id;
    id = make(started);
  }
  return id;
}
