import { spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { appendFile, chmod, chown, mkdir, mkdtemp, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Manifest, manifestSchema } from "../../src/catalog/manifest.ts";
import { type Config, configSchema, type Drill, type DrillInput, drillSchema, type Job, jobSchema } from "../../src/config/schema.ts";
import { directoryDestination } from "../../src/drills/dir-destination.ts";
import type { ArtifactInput, Scratch } from "../../src/drills/kind.ts";
import { restoreVolume, volumeDrillKind } from "../../src/drills/volume.ts";
import { ConfigError, code, IntegrityError, RefusedError } from "../../src/errors.ts";
import { type VolumeInventory, VolumeSource } from "../../src/sources/volume.ts";

const HASH = "0".repeat(64);

let tmp: string;
let volume: string;
let scratchDir: string;
let artifact: string;
let inventory: VolumeInventory;
let runs = 0;

const manifest: Manifest = manifestSchema.parse({
  format: "lifeboat-snapshot",
  version: 1,
  job: "uploads",
  snapshotId: "20260101T000000Z-abcd",
  target: "nas",
  startedAt: "2026-01-01T00:00:00.000Z",
  finishedAt: "2026-01-01T00:00:01.000Z",
  source: { kind: "volume", boundary: "app" },
  encryption: { scheme: "age", recipients: ["age1test"] },
  compression: { scheme: "zstd", level: 1 },
  artifacts: [
    { name: "volume.tar.zst.age", size: 1, sha256: HASH, format: "tar-pax", encoding: ["age", "zstd"], rawBytes: 1, compressedBytes: 1 },
  ],
  inventory: { name: "inventory.json.age", size: 1, sha256: HASH, counts: "exact" },
  tool: { name: "lifeboat", version: "0.0.0" },
});

function makeConfig(directory: string | undefined): Config {
  return configSchema.parse({
    encryption: { recipients: ["age1test"] },
    targets: { nas: { type: "filesystem", path: join(tmp, "nas"), boundary: "nas" } },
    scratch: directory === undefined ? {} : { directory },
  });
}

function makeJob(path = volume): Job {
  return jobSchema.parse({ name: "uploads", source: { type: "volume", path, boundary: "app" }, targets: ["nas"] });
}

function drill(checks: DrillInput["checks"] = {}): Drill {
  return drillSchema.parse({ name: "uploads-weekly", job: "uploads", checks });
}

const fileInput = (path: string): ArtifactInput => ({ stream: async () => createReadStream(path), file: async () => path });

async function scratch(directory: string | null = scratchDir, job = makeJob()): Promise<Scratch> {
  runs++;
  const signal = new AbortController().signal;
  return volumeDrillKind.createScratch({ config: makeConfig(directory ?? undefined), job, manifest, runId: `run${runs}`, signal });
}

/** A restored scratch directory, handed to `change` before the check runs; always dropped. */
async function restoreAndCheck(change: (dir: string) => Promise<void> = async () => {}, inv: unknown = inventory, d = drill()) {
  const s = await scratch();
  const signal = new AbortController().signal;
  try {
    await s.restore(fileInput(artifact), signal);
    await change(s.location);
    return await s.check(inv as VolumeInventory, d, signal);
  } finally {
    await s.drop();
    expect(existsSync(s.location)).toBe(false);
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "lifeboat-volume-drill-"));
  volume = join(tmp, "volume");
  scratchDir = join(tmp, "scratch");
  await mkdir(join(volume, "img/2026"), { recursive: true });
  await writeFile(join(volume, "img/2026/cat.jpg"), Buffer.alloc(300_000, 9));
  await writeFile(join(volume, "img/readme.txt"), "pictures\n");
  await writeFile(join(volume, "empty"), "");
  await symlink("2026/cat.jpg", join(volume, "img/latest"));
  await symlink("/etc/hostname", join(volume, "host"));
  await mkdir(join(volume, "ro"));
  await writeFile(join(volume, "ro/frozen"), "ice");
  await chmod(join(volume, "ro"), 0o555);
  const dump = await new VolumeSource({ type: "volume", path: volume, boundary: "app", exclude: [], onUnreadable: "fail" }).dump(
    new AbortController().signal,
  );
  artifact = join(tmp, "volume.tar");
  await pipeline(dump.stream, createWriteStream(artifact));
  await dump.done;
  inventory = (await dump.inventory) as VolumeInventory;
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("volumeDrillKind", () => {
  it("restores into a fresh private directory and the file check passes", async () => {
    const s = await scratch();
    expect(s.location).toBe(join(scratchDir, `lifeboat_drill_uploads_run${runs}`));
    expect(statSync(s.location).mode & 0o777).toBe(0o700);
    const signal = new AbortController().signal;
    await s.restore(fileInput(artifact), signal);
    const [result, ...others] = await s.check(inventory, drill(), signal);
    expect(others).toEqual([]);
    expect(result).toMatchObject({ kind: "files", ok: true, expected: { files: 4, symlinks: 2 }, actual: { files: 4, symlinks: 2 } });
    await s.drop();
    await s.drop();
    expect(existsSync(s.location)).toBe(false);
  });

  it("reports a modified, a missing and an extra file, a moved symlink and a changed mode, each with expected and actual", async () => {
    const [result] = await restoreAndCheck(async (dir) => {
      await appendFile(join(dir, "img/readme.txt"), "tampered");
      await writeFile(join(dir, "empty"), "x");
      await chmod(join(dir, "ro"), 0o755);
      await unlink(join(dir, "ro/frozen"));
      await writeFile(join(dir, "ro/intruder"), "!");
      await unlink(join(dir, "img/latest"));
      await symlink("elsewhere", join(dir, "img/latest"));
    });
    expect(result?.ok).toBe(false);
    expect(result?.mismatches).toEqual([
      { item: "empty", expected: { size: 0 }, actual: { size: 1 } },
      { item: "img/latest", expected: { target: "2026/cat.jpg" }, actual: { target: "elsewhere" } },
      { item: "img/readme.txt", expected: { size: 9 }, actual: { size: 17 } },
      { item: "ro", expected: { mode: "0555" }, actual: { mode: "0755" } },
      { item: "ro/frozen", expected: { type: "file", size: 3 }, actual: "missing" },
      { item: "ro/intruder", expected: "absent", actual: { type: "file", size: 1 } },
    ]);
    expect(result?.detail).toMatch(/^6 entries differ: "empty" expected \{"size":0\}, got \{"size":1\}/);
  });

  it("catches same-size content changes by sha256, and a tampered inventory the same way", async () => {
    const [changed] = await restoreAndCheck(async (dir) => {
      await writeFile(join(dir, "img/readme.txt"), "PICTURES\n");
    });
    const readme = inventory.files.find((f) => f.path === "img/readme.txt");
    expect(changed?.mismatches).toEqual([
      { item: "img/readme.txt", expected: { sha256: readme?.sha256 }, actual: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } },
    ]);
    const tampered = structuredClone(inventory);
    const cat = tampered.files.find((f) => f.path === "img/2026/cat.jpg");
    if (cat) cat.sha256 = "f".repeat(64);
    tampered.files.push({ path: "img/ghost.png", type: "file", size: 5, sha256: HASH, mode: 0o644 });
    const [result] = await restoreAndCheck(undefined, tampered);
    expect(result?.mismatches?.map((m) => m.item)).toEqual(["img/2026/cat.jpg", "img/ghost.png"]);
    expect(result?.mismatches?.[0]).toMatchObject({ expected: { sha256: "f".repeat(64) } });
  });

  it("runs no check when checks.files is off, and fails the check for an inventory that is no file list", async () => {
    expect(await restoreAndCheck(undefined, inventory, drill({ files: "off" }))).toEqual([]);
    const [bad] = await restoreAndCheck(undefined, { kind: "postgres", counts: "exact", tables: {} });
    expect(bad).toMatchObject({ kind: "files", ok: false, detail: expect.stringMatching(/not a volume file list/) });
  });

  it("needs scratch.directory, and refuses a scratch place inside the volume or holding it", async () => {
    await expect(scratch(null)).rejects.toBeInstanceOf(ConfigError);
    await expect(scratch(null)).rejects.toMatchObject({ hint: expect.stringMatching(/scratch: \{ directory:/) });
    await expect(scratch(join(volume, "img"))).rejects.toBeInstanceOf(RefusedError);
    expect(existsSync(join(volume, "img", `lifeboat_drill_uploads_run${runs}`))).toBe(false);
    // A job whose volume lies inside the scratch area's new directory cannot exist by name, but one above it can.
    await expect(scratch(scratchDir, makeJob(join(scratchDir, `lifeboat_drill_uploads_run${runs + 1}`, "data")))).rejects.toBeInstanceOf(
      RefusedError,
    );
    await expect(scratch(scratchDir, makeJob(tmp))).rejects.toMatchObject({ code: code.refused });
  });

  it("drops the scratch directory after a failed restore (a truncated archive)", async () => {
    const s = await scratch();
    const half = Readable.from([readFileSync(artifact).subarray(0, 200_000)]);
    const input: ArtifactInput = { stream: async () => half, file: async () => artifact };
    await expect(s.restore(input, new AbortController().signal)).rejects.toMatchObject({ code: code.integrity });
    await s.drop();
    expect(existsSync(s.location)).toBe(false);
  });
});

describe("volume drill as a user other than root", () => {
  it.skipIf(process.getuid?.() !== 0)(
    "passes on a root-made snapshot holding a file of mode 000 and directories its owner cannot enter or list, and keeps their modes",
    async () => {
      // Everything the unprivileged process touches lies in a directory it may enter; the scratch parent is its own.
      const open = await mkdtemp(join(tmpdir(), "lifeboat-volume-nobody-"));
      try {
        await chmod(open, 0o755);
        const vol = join(open, "volume");
        await mkdir(join(vol, "noexec/nolist"), { recursive: true });
        await writeFile(join(vol, "zero"), "z");
        await writeFile(join(vol, "noexec/b"), "b");
        await writeFile(join(vol, "noexec/nolist/c"), "c");
        await chmod(join(vol, "zero"), 0o000);
        await chmod(join(vol, "noexec/nolist"), 0o300);
        await chmod(join(vol, "noexec"), 0o644);
        const dump = await new VolumeSource({ type: "volume", path: vol, boundary: "app", exclude: [], onUnreadable: "fail" }).dump(
          new AbortController().signal,
        );
        const tar = join(open, "volume.tar");
        await pipeline(dump.stream, createWriteStream(tar));
        await dump.done;
        await chmod(tar, 0o644);
        const inv = join(open, "inventory.json");
        await writeFile(inv, JSON.stringify(await dump.inventory), { mode: 0o644 });
        const parent = join(open, "scratch");
        await mkdir(parent);
        await chown(parent, 65534, 65534);
        const script = `
          import { spawnSync } from "node:child_process";
import { createReadStream, existsSync, lstatSync, readFileSync } from "node:fs";
          import { volumeDrillKind } from ${JSON.stringify(new URL("../../src/drills/volume.ts", import.meta.url).pathname)};
          const signal = new AbortController().signal;
          const ctx = { config: { scratch: { directory: ${JSON.stringify(parent)} } }, job: { name: "uploads", source: { type: "volume", path: ${JSON.stringify(vol)} } }, runId: "nobody", signal };
          const s = await volumeDrillKind.createScratch(ctx);
          await s.restore({ stream: async () => createReadStream(${JSON.stringify(tar)}), file: async () => ${JSON.stringify(tar)} }, signal);
          const checks = await s.check(JSON.parse(readFileSync(${JSON.stringify(inv)}, "utf8")), { checks: { files: "exact" } }, signal);
          const mode = (p) => lstatSync(s.location + "/" + p).mode & 0o7777;
          const modes = { zero: mode("zero"), noexec: mode("noexec") };
          await s.drop();
          console.log(JSON.stringify({ checks, modes, dropped: !existsSync(s.location) }));`;
        const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { uid: 65534, gid: 65534, encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        const out = JSON.parse(r.stdout) as { checks: { ok: boolean; detail?: string }[]; modes: Record<string, number>; dropped: boolean };
        expect(out.checks[0]?.detail).toBeUndefined();
        expect(out.checks[0]?.ok).toBe(true);
        // The modes lent for reading were given back: the restored tree still says what the snapshot says.
        expect(out.modes).toEqual({ zero: 0o000, noexec: 0o644 });
        expect(out.dropped).toBe(true);
      } finally {
        await rm(open, { recursive: true, force: true });
      }
    },
  );
});

describe("restoreVolume", () => {
  it("creates the directory and restores links to outside as the links they were", async () => {
    const dir = join(tmp, "restore-target", "deep");
    const r = await restoreVolume({ input: createReadStream(artifact), dir });
    expect(r.files).toBe(4);
    expect(readlinkSync(join(dir, "host"))).toBe("/etc/hostname");
  });
});

describe("directoryDestination", () => {
  /** The artifact cut off inside cat.jpg, with a damaged-object error, as a broken download ends. */
  const cutInput = (): ArtifactInput => ({
    stream: async () =>
      Readable.from(
        (async function* () {
          yield readFileSync(artifact).subarray(0, 100_000);
          throw new IntegrityError("volume.tar.zst.age: payload chunk 2 failed authentication");
        })(),
      ),
    file: async () => artifact,
  });

  it("says a new directory now holds a partial restore, an existing one that files were replaced, and nothing when it made nothing", async () => {
    const fresh = join(tmp, "dest-fresh");
    const err = await directoryDestination(fresh)
      .restore(cutInput(), { overwrite: false }, new AbortController().signal)
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `volume.tar.zst.age: payload chunk 2 failed authentication (${fresh} now holds a partial restore: remove it before restoring again)`,
    );
    const mine = join(tmp, "dest-mine");
    await mkdir(mine);
    await writeFile(join(mine, "notes.txt"), "my own file\n");
    const over = await directoryDestination(mine)
      .restore(cutInput(), { overwrite: true }, new AbortController().signal)
      .catch((e: unknown) => e);
    expect((over as Error).message).toMatch(
      /\(entries of the snapshot written before the failure have replaced files of the same name in .*dest-mine\)$/,
    );
    expect(readFileSync(join(mine, "notes.txt"), "utf8")).toBe("my own file\n");
    // Under a file, the directory cannot even be made: nothing was written, and the message does not pretend so.
    await writeFile(join(tmp, "a-file"), "x");
    const none = await directoryDestination(join(tmp, "a-file", "sub"))
      .restore(cutInput(), { overwrite: false }, new AbortController().signal)
      .catch((e: unknown) => e);
    expect((none as Error).message).not.toMatch(/partial restore|replaced files/);
  });
});
