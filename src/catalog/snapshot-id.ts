import { randomBytes } from "node:crypto";

/** Makes a snapshot id that sorts by time: "20261124T215300Z-3fa9" (UTC, then 4 random hex digits against collisions). */
export function makeSnapshotId(at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  return `${stamp}-${randomBytes(2).toString("hex")}`;
}

/** Whether a string is a well-formed snapshot id. */
export function isSnapshotId(id: string): boolean {
  return /^\d{8}T\d{6}Z-[0-9a-f]{4}$/.test(id);
}

/** The time encoded in a snapshot id. */
export function snapshotTime(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  if (!m) return new Date(Number.NaN);
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}
