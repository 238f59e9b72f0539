import { z } from "zod";

/** One member of a volume backup, as recorded while it streamed into the tar. */
export const volumeEntrySchema = z.object({
  /** Path relative to the volume root, "/"-separated; directories without a trailing "/". */
  path: z.string().min(1),
  type: z.enum(["file", "dir", "symlink"]),
  /** Content bytes as stored (0 for directories and symlinks). */
  size: z.number().int().nonnegative(),
  /** sha256 (hex) of the stored content; files only. */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** Symlink target, verbatim; symlinks only. */
  target: z.string().optional(),
  /** Permission bits (mode & 0o7777). */
  mode: z.number().int().nonnegative(),
  /** Set when the file changed while it was read: the stored bytes (and the hash) are what was read, warned about. */
  changed: z.literal(true).optional(),
});

/** The inventory of a volume snapshot (inventory.json, kind "volume"). */
export const volumeInventorySchema = z.object({
  kind: z.literal("volume"),
  /** Always "exact": hashed from the very bytes that went into the tar, in the same read. */
  counts: z.enum(["exact", "approximate"]),
  /** Every member in archive order (depth first, names in byte order). */
  files: z.array(volumeEntrySchema),
  /** Regular files. */
  fileCount: z.number().int().nonnegative(),
  /** Bytes of all regular files. */
  totalBytes: z.number().int().nonnegative(),
  dirCount: z.number().int().nonnegative(),
  symlinkCount: z.number().int().nonnegative(),
});

/** One inventory entry. */
export type VolumeEntry = z.infer<typeof volumeEntrySchema>;
/** A volume inventory. */
export type VolumeInventory = z.infer<typeof volumeInventorySchema>;

/** Builds the inventory as members stream by; holds only the entry list (with the walk, about 1.5–2 KB a file: docs/CONFIG.md). */
export class InventoryBuilder {
  readonly files: VolumeEntry[] = [];
  fileCount = 0;
  totalBytes = 0;
  dirCount = 0;
  symlinkCount = 0;

  /** Records one member. */
  add(entry: VolumeEntry): void {
    this.files.push(entry);
    if (entry.type === "file") {
      this.fileCount++;
      this.totalBytes += entry.size;
    } else if (entry.type === "dir") this.dirCount++;
    else this.symlinkCount++;
  }

  /** The finished inventory. */
  build(): VolumeInventory {
    return {
      kind: "volume",
      counts: "exact",
      files: this.files,
      fileCount: this.fileCount,
      totalBytes: this.totalBytes,
      dirCount: this.dirCount,
      symlinkCount: this.symlinkCount,
    };
  }
}
