import { Header, Pax } from "tar";

/** The artifact format a volume source writes, as named in the manifest and docs/FORMAT.md. */
export const VOLUME_FORMAT = "tar-pax";

/** One archive member as the volume writer describes it. */
export interface TarMember {
  /** Path relative to the volume root, "/"-separated, without a leading "./"; directories without a trailing "/". */
  path: string;
  type: "file" | "dir" | "symlink";
  /** Content bytes (0 for directories and symlinks). */
  size: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  mtime: Date;
  uid: number;
  gid: number;
  /** Symlink target, stored verbatim. */
  linkpath?: string;
}

const TYPE = { file: "File", dir: "Directory", symlink: "SymbolicLink" } as const;

/**
 * Encodes the header block(s) of one member: a ustar header, preceded by a pax extended header when a field does
 * not fit ustar (long or non-ASCII path or link target, size ≥ 8 GiB, ids too large). The encoding is the `tar`
 * package's own Header and Pax classes; only the walk and the reads are ours (its Pack cannot hash what it reads,
 * nor survive a file that vanishes mid-read). mtime is kept to the second, as ustar stores it.
 */
export function encodeHeader(m: TarMember): Buffer {
  const path = m.type === "dir" ? `${m.path}/` : m.path;
  const mtime = new Date(Math.floor(m.mtime.getTime() / 1000) * 1000);
  const header = new Header({
    path,
    mode: m.mode & 0o7777,
    uid: m.uid,
    gid: m.gid,
    size: m.type === "file" ? m.size : 0,
    mtime,
    type: TYPE[m.type],
    linkpath: m.linkpath,
  });
  const block = Buffer.alloc(512);
  const needPax = header.encode(block, 0);
  if (!needPax) return block;
  const pax = new Pax({
    path,
    linkpath: m.linkpath,
    size: m.type === "file" ? m.size : undefined,
    mtime,
    uid: m.uid,
    gid: m.gid,
  }).encode();
  return Buffer.concat([pax, block]);
}

/** Zero bytes that pad a member's content up to the next 512-byte block. */
export function padding(size: number): Buffer {
  const rest = size % 512;
  return rest === 0 ? EMPTY : Buffer.alloc(512 - rest);
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(1024);

const EMPTY = Buffer.alloc(0);
