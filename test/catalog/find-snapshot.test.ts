import { describe, expect, it } from "vitest";
import { findSnapshot, listSnapshots } from "../../src/catalog/snapshots.ts";
import { code, LifeboatError, NotFoundError } from "../../src/errors.ts";
import { MemoryTarget } from "../../src/storage/memory.ts";
import { putBuffer } from "../../src/storage/target.ts";
import { manifest } from "../report/fixtures.ts";

const OLD = manifest("db", "t", 48);
const NEWER = "29990101T000000Z-beef";

async function targetWith(...manifests: { id: string; text: string }[]): Promise<MemoryTarget> {
  const t = new MemoryTarget("t");
  for (const m of manifests) {
    await putBuffer(t, `db/snapshots/${m.id}/db.pgdump.zst.age`, "x");
    await putBuffer(t, `db/snapshots/${m.id}/manifest.json`, m.text);
  }
  return t;
}

describe("findSnapshot with manifests it cannot read", () => {
  it("uses the newest readable snapshot and warns about a newer one it cannot read", async () => {
    const t = await targetWith(
      { id: OLD.snapshotId, text: JSON.stringify(OLD) },
      { id: NEWER, text: JSON.stringify({ ...OLD, snapshotId: NEWER, version: 2 }) },
    );
    const warnings: string[] = [];
    const found = await findSnapshot(t, "db", undefined, (m) => warnings.push(m));
    expect(found.snapshotId).toBe(OLD.snapshotId);
    expect(warnings).toEqual([
      `snapshot ${NEWER} on target "t" is newer than ${OLD.snapshotId} but its manifest cannot be read (target "t": db/snapshots/${NEWER}/manifest.json has format version 2, newer than this lifeboat reads (1)); using ${OLD.snapshotId}`,
    ]);
  });

  it("says the manifests cannot be read, not that there is no backup, when none can", async () => {
    const t = await targetWith({ id: NEWER, text: '{"format":"lifeboat-snapshot","ver' });
    const err = await findSnapshot(t, "db").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toMatch(
      /^job "db": no readable manifest on target "t": 1 snapshot\(s\) have one that cannot be read \(.*not valid JSON/,
    );
    expect((err as NotFoundError).hint).toMatch(/lifeboat snapshots db lists them/);
    expect((await listSnapshots(t, "db")).broken.map((b) => b.snapshotId)).toEqual([NEWER]);
  });
});

describe("listSnapshots when the target cannot be read", () => {
  it("fails the listing instead of calling a manifest it could not fetch broken", async () => {
    const t = await targetWith({ id: OLD.snapshotId, text: JSON.stringify(OLD) });
    const get = t.get.bind(t);
    t.get = async (key, opts) => {
      if (key.endsWith("manifest.json"))
        throw new LifeboatError(code.storage, `target "t": get "${key}": the download broke off after 300 bytes (aborted)`);
      return get(key, opts);
    };
    await expect(listSnapshots(t, "db")).rejects.toMatchObject({ code: "STORAGE", message: expect.stringMatching(/broke off/) });
  });
});
