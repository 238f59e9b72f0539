import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { makeKey } from "../../test/helpers/age.ts";
import type { Manifest } from "../catalog/manifest.ts";
import { listSnapshots } from "../catalog/snapshots.ts";
import { configSchema, jobSchema } from "../config/schema.ts";
import { abortedError, code, LifeboatError } from "../errors.ts";
import { exitOf, ToolOutput } from "../sources/process.ts";
import type { Dump, DumpInfo, Source } from "../sources/source.ts";
import { MemoryTarget } from "../storage/memory.ts";
import { getBuffer, type PutOptions, putBuffer, type StoredObject } from "../storage/target.ts";
import { createDecryptStream, encryptBuffer } from "./age.ts";
import { runBackup, unusedSnapshotId } from "./backup.ts";
import { createDecompressStream } from "./compress.ts";
import { openArtifact, verifySnapshot } from "./restore.ts";

const key = await makeKey();
const config = configSchema.parse({
  encryption: { recipients: [key.recipient] },
  targets: { a: { type: "filesystem", path: "/a", boundary: "a" }, b: { type: "filesystem", path: "/b", boundary: "b" } },
});
const job = jobSchema.parse({ name: "app", source: { type: "postgres", url: "postgres://x/y", boundary: "src" }, targets: ["a", "b"] });

/** A source that yields the given chunks, then succeeds or fails as told. */
function fakeSource(chunks: Buffer[], fail?: Error): Source {
  return {
    kind: "fake",
    async dump(): Promise<Dump> {
      const stream = new PassThrough();
      const done = (async () => {
        for (const c of chunks) {
          if (!stream.write(c)) await new Promise((r) => stream.once("drain", r));
        }
        if (fail) {
          stream.destroy(fail);
          throw fail;
        }
        stream.end();
        return { tool: "fake 1.0", warnings: ["be careful"], details: { db: "y" } };
      })();
      done.catch(() => {});
      return {
        artifact: "db.raw",
        format: "raw",
        stream,
        inventory: Promise.resolve({ kind: "fake", counts: "exact", tables: { t: 3 } }),
        done,
      };
    },
  };
}

async function plaintext(target: MemoryTarget, k: string): Promise<Buffer> {
  const sealed = await getBuffer(target, k);
  const out: Buffer[] = [];
  for await (const c of Readable.from([sealed])
    .pipe(createDecryptStream([key.identity], k))
    .pipe(createDecompressStream()))
    out.push(c as Buffer);
  return Buffer.concat(out);
}

describe("runBackup", () => {
  it("stores the same encrypted snapshot on every target, manifest last, and the bytes decrypt back", async () => {
    const data = Array.from({ length: 40 }, () => randomBytes(100_000));
    const a = new MemoryTarget("a");
    const b = new MemoryTarget("b");
    const result = await runBackup({ job, config, source: fakeSource(data), targets: [a, b] });
    expect(result.ok).toBe(true);
    expect(result.rawBytes).toBe(4_000_000);
    for (const t of [a, b]) {
      const { complete } = await listSnapshots(t, "app");
      expect(complete.map((m) => m.snapshotId)).toEqual([result.snapshotId]);
      const m = complete[0]!;
      expect(m.target).toBe(t.name);
      expect(m.warnings).toEqual(["be careful"]);
      const k = `app/snapshots/${result.snapshotId}/db.raw.zst.age`;
      expect((await plaintext(t, k)).equals(Buffer.concat(data))).toBe(true);
      const inv = JSON.parse((await plaintext2(t, `app/snapshots/${result.snapshotId}/inventory.json.age`)).toString());
      expect(inv.tables).toEqual({ t: 3 });
    }
    const ma = (await listSnapshots(a, "app")).complete[0]!;
    const mb = (await listSnapshots(b, "app")).complete[0]!;
    expect(ma.artifacts[0]!.sha256).toBe(mb.artifacts[0]!.sha256);
  });

  it("writes no manifest anywhere when the dump fails, and rejects with the dump's message", async () => {
    const a = new MemoryTarget("a");
    const b = new MemoryTarget("b");
    await expect(
      runBackup({
        job,
        config,
        source: fakeSource([randomBytes(50_000)], new Error("pg_dump exited with 1: no such database")),
        targets: [a, b],
      }),
    ).rejects.toThrow(/no such database/);
    for (const t of [a, b]) expect((await listSnapshots(t, "app")).complete).toEqual([]);
  });

  it("a dump that fails at once, while the targets are still being listed, is reported, not an uncaught error", async () => {
    /** A target whose listing (the snapshot id check) answers late: the dump has started and failed by then. */
    class SlowList extends MemoryTarget {
      override async *list(prefix: string) {
        await new Promise((r) => setTimeout(r, 100));
        yield* super.list(prefix);
      }
    }
    const failure = new Error("mysqldump: Got error: 1045: Access denied");
    const failing: Source = {
      kind: "fake",
      async dump(): Promise<Dump> {
        const stream = new PassThrough();
        // Nothing here observes these: runBackup must, from the moment dump() resolves.
        setImmediate(() => stream.destroy(failure));
        return { artifact: "db.raw", format: "raw", stream, inventory: Promise.reject(failure), done: Promise.reject(failure) };
      },
    };
    const a = new SlowList("a");
    await expect(runBackup({ job: { ...job, targets: ["a"] }, config, source: failing, targets: [a] })).rejects.toThrow(/Access denied/);
    expect((await listSnapshots(a, "app")).complete).toEqual([]);
  });

  it("keeps going when one target fails and reports it", async () => {
    const a = new MemoryTarget("a");
    const broken = new MemoryTarget("b");
    broken.put = async (_k: string, body: Readable, _o?: PutOptions): Promise<StoredObject> => {
      body.resume();
      throw new Error("disk full");
    };
    const result = await runBackup({ job, config, source: fakeSource([randomBytes(300_000)]), targets: [a, broken] });
    expect(result.ok).toBe(false);
    expect(result.targets).toMatchObject([
      { target: "a", ok: true },
      { target: "b", ok: false, error: expect.stringMatching(/disk full/) },
    ]);
    expect((await listSnapshots(a, "app")).complete).toHaveLength(1);
  });

  it("lists the snapshot that started last as newest, also when an older overlapping one finished after it", async () => {
    const a = new MemoryTarget("a");
    const times = ["2026-12-07T10:00:00.100Z", "2026-12-07T10:00:00.900Z", "2026-12-07T10:00:05.000Z", "2026-12-07T10:00:09.000Z"];
    // First backup starts at .100 and ends at 9 s; the second starts at .900 (the same second) and ends at 5 s.
    const clock = (i: number) => () => new Date(times[i] as string);
    const slow = runBackup({
      job: { ...job, targets: ["a"] },
      config,
      source: fakeSource([randomBytes(100)]),
      targets: [a],
      now: sequence(clock(0), clock(3)),
    });
    await slow;
    await runBackup({
      job: { ...job, targets: ["a"] },
      config,
      source: fakeSource([randomBytes(100)]),
      targets: [a],
      now: sequence(clock(1), clock(2)),
    });
    const listed = (await listSnapshots(a, "app")).complete;
    expect(listed.map((m) => m.startedAt)).toEqual([times[1], times[0]]);
  });

  it("draws another snapshot id when a target already holds one of the same second and digits", async () => {
    const a = new MemoryTarget("a");
    const b = new MemoryTarget("b");
    await putBuffer(b, "app/snapshots/20261207T100000Z-aaaa/db.raw.zst.age", "x");
    const draws = ["20261207T100000Z-aaaa", "20261207T100000Z-bbbb"];
    const id = await unusedSnapshotId([a, b], "app", new Date(), () => draws.shift() as string);
    expect(id).toBe("20261207T100000Z-bbbb");
  });

  it("verify reports the inventory's plaintext size in bytes, not characters", async () => {
    const a = new MemoryTarget("a");
    const source = fakeSource([randomBytes(1000)]);
    const inventory = { kind: "fake", counts: "exact" as const, tables: { ünïcødé: 3 } };
    const withNames: Source = { kind: "fake", dump: async (s) => ({ ...(await source.dump(s)), inventory: Promise.resolve(inventory) }) };
    await runBackup({ job: { ...job, targets: ["a"] }, config, source: withNames, targets: [a] });
    const [manifest] = (await listSnapshots(a, "app")).complete;
    const check = await verifySnapshot(a, manifest as Manifest, [key.identity]);
    expect(check.objects.at(-1)).toMatchObject({
      name: "inventory.json.age",
      ok: true,
      bytes: Buffer.byteLength(JSON.stringify(inventory)),
    });
    expect(Buffer.byteLength(JSON.stringify(inventory))).toBeGreaterThan(JSON.stringify(inventory).length);
  });

  it("when the only target fails, rejects with that target's error and hint, not the dump it had to stop", async () => {
    const broken = new MemoryTarget("a");
    broken.put = async (_k: string, body: Readable): Promise<StoredObject> => {
      body.resume();
      throw new LifeboatError(code.storage, 'target "a": directory /mnt/x does not exist', { hint: "mount it" });
    };
    // A dump that runs until it is stopped, as a real dump tool does.
    const endless: Source = {
      kind: "fake",
      async dump(signal: AbortSignal): Promise<Dump> {
        const stream = new PassThrough();
        const timer = setInterval(() => stream.write(randomBytes(1024)), 1);
        const done = new Promise<never>((_, reject) =>
          signal.addEventListener("abort", () => {
            clearInterval(timer);
            const err = abortedError("fake dump", signal);
            stream.destroy(err);
            reject(err);
          }),
        );
        done.catch(() => {});
        return { artifact: "db.raw", format: "raw", stream, inventory: new Promise(() => {}), done };
      },
    };
    const one = { ...job, targets: ["a"] };
    const err = await runBackup({ job: one, config, source: endless, targets: [broken] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as LifeboatError).message).toBe('job "app": backup: target "a": directory /mnt/x does not exist');
    expect((err as LifeboatError).hint).toBe("mount it");
  });

  it("a plaintext size other than the manifest's rawBytes fails every reader of the artifact, not only verify", async () => {
    const a = new MemoryTarget("a");
    const result = await runBackup({ job: { ...job, targets: ["a"] }, config, source: fakeSource([randomBytes(70_000)]), targets: [a] });
    const { complete } = await listSnapshots(a, "app");
    const m = complete[0] as Manifest;
    const artifact = m.artifacts[0] as Manifest["artifacts"][number];
    const read = async (rawBytes: number) => {
      let n = 0;
      for await (const c of await openArtifact(a, m, { ...artifact, rawBytes }, [key.identity])) n += (c as Buffer).length;
      return n;
    };
    expect(await read(70_000)).toBe(result.rawBytes);
    await expect(read(70_001)).rejects.toThrow(/db\.raw\.zst\.age: decompressed to 70000 bytes, the manifest says 70001/);
    const checked = await verifySnapshot(a, { ...m, artifacts: [{ ...artifact, rawBytes: 70_001 }] }, [key.identity]);
    expect(checked.ok).toBe(false);
    expect(checked.objects[0]).toMatchObject({
      ok: false,
      bytes: 70_000,
      error: expect.stringMatching(/decompressed to 70000 bytes, the manifest says 70001/),
    });
  });

  it("names the object when Node's zstd finds the data damaged (LIFEBOAT_ZSTD=node)", async () => {
    const a = new MemoryTarget("a");
    await runBackup({ job: { ...job, targets: ["a"] }, config, source: fakeSource([randomBytes(70_000)]), targets: [a] });
    const m = (await listSnapshots(a, "app")).complete[0] as Manifest;
    const artifact = m.artifacts[0] as Manifest["artifacts"][number];
    const k = `app/snapshots/${m.snapshotId}/${artifact.name}`;
    // Damage inside the zstd frame, sealed again so that age and the manifest's sha256 both agree: only zstd can tell.
    const zst = Buffer.concat(
      await Readable.from([await getBuffer(a, k)])
        .pipe(createDecryptStream([key.identity], k))
        .toArray(),
    );
    zst.writeUInt8(zst.readUInt8(zst.length >> 1) ^ 0xff, zst.length >> 1);
    const sealed = await encryptBuffer([key.recipient], zst);
    await putBuffer(a, k, sealed);
    const forged = { ...artifact, size: sealed.length, sha256: createHash("sha256").update(sealed).digest("hex") };
    const saved = process.env.LIFEBOAT_ZSTD;
    process.env.LIFEBOAT_ZSTD = "node";
    try {
      const read = async () => {
        for await (const _ of await openArtifact(a, m, forged, [key.identity])) {
        }
      };
      await expect(read()).rejects.toMatchObject({
        code: code.integrity,
        message: expect.stringMatching(/^target "a": app\/snapshots\/.*\/db\.raw\.zst\.age: zstd: /),
      });
    } finally {
      if (saved === undefined) delete process.env.LIFEBOAT_ZSTD;
      else process.env.LIFEBOAT_ZSTD = saved;
    }
  });

  it("hands a dump tool's pipe to zstd: the raw bytes never pass through Node", async () => {
    // 3 MB of text from a real child process, as pg_dump's stdout reaches the pipeline.
    const child = spawn("sh", ["-c", "seq 1 400000"], { stdio: ["ignore", "pipe", "ignore"] });
    const output = new ToolOutput(child);
    let streamRead = 0;
    const source: Source = {
      kind: "fake",
      async dump(): Promise<Dump> {
        const done = exitOf(child).then((exit): DumpInfo => {
          output.settle(exit.status === 0 ? undefined : new Error(`exit ${exit.status}`));
          return { warnings: [] };
        });
        return {
          artifact: "db.raw",
          format: "raw",
          get stream() {
            streamRead++;
            return output.stream;
          },
          handOff: () => output.handOff(),
          inventory: Promise.resolve({ kind: "fake", counts: "exact" }),
          done,
        };
      },
    };
    const a = new MemoryTarget("a");
    const result = await runBackup({ job: { ...job, targets: ["a"] }, config, source, targets: [a] });
    expect(streamRead).toBe(0);
    const expected = `${Array.from({ length: 400_000 }, (_, i) => i + 1).join("\n")}\n`;
    expect(result.rawBytes).toBe(expected.length);
    const k = `app/snapshots/${result.snapshotId}/db.raw.zst.age`;
    expect((await plaintext(a, k)).toString()).toBe(expected);
  });
});

async function plaintext2(target: MemoryTarget, k: string): Promise<Buffer> {
  const sealed = await getBuffer(target, k);
  const out: Buffer[] = [];
  for await (const c of Readable.from([sealed]).pipe(createDecryptStream([key.identity], k))) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** A clock that answers with each of the given clocks in turn, the last one from then on. */
function sequence(...clocks: (() => Date)[]): () => Date {
  let i = 0;
  return () => (clocks[Math.min(i++, clocks.length - 1)] as () => Date)();
}
