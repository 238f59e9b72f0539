import type { Readable } from "node:stream";

/** Row counts per table, or a file list: what a drill checks the restore against. */
export interface Inventory {
  /** "postgres" | "mysql" | "sqlite" | "volume". */
  kind: string;
  /** "exact" when captured in the same snapshot as the dump; "approximate" otherwise. */
  counts: "exact" | "approximate";
  /** Table → row count; each source documents its key form (docs/FORMAT.md) and its drills compute the same keys. */
  tables?: Record<string, number>;
  /** Anything else a source wants the drill to know (file list, totals). */
  [extra: string]: unknown;
}

/** What a running dump yields. */
export interface Dump {
  /** Artifact name inside the snapshot before compression and encryption (e.g. "db.pgdump"); it is stored as "<artifact>.zst.age". */
  artifact: string;
  /** Artifact format, as documented in docs/FORMAT.md (e.g. "pg_dump-custom"). */
  format: string;
  /** The artifact bytes. Errors of the dump (tool exit code, connection loss) are emitted on this stream. */
  readonly stream: Readable;
  /**
   * When the artifact is one tool's stdout unchanged: that pipe, unread, for a consumer that passes it to another
   * process instead of reading `stream` (the bytes then never pass through Node). Undefined once `stream` is read.
   * The data's end is then trustworthy only once `done` resolved.
   */
  handOff?(): Readable | undefined;
  /** Resolves once the inventory is captured; rejects if it could not be. */
  inventory: Promise<Inventory>;
  /** Resolves when the dump finished cleanly (exit code checked); rejects with the tool's message otherwise. */
  done: Promise<DumpInfo>;
}

/** Facts about a finished dump that go into the manifest. */
export interface DumpInfo {
  /** Tool and version that produced it (e.g. "pg_dump (PostgreSQL) 15.20"). */
  tool?: string;
  /** Non-fatal problems worth a person's attention. */
  warnings: string[];
  /** Source-specific facts (server version, database name). Never secrets. */
  details?: Record<string, unknown>;
}

/** Something worth backing up. */
export interface Source {
  readonly kind: string;
  /** Starts the dump. Aborting the signal kills child processes and ends sessions. */
  dump(signal: AbortSignal): Promise<Dump>;
}
