import { tableKey } from "./mysql-tables.ts";

// Statement lines of a mariadb-dump/mysqldump dump that say which tables it holds. The tool lists tables itself,
// after lifeboat listed them for the inventory: a table created in between is in the dump but was never counted.
const NEEDLES = [Buffer.from("\nCREATE TABLE `", "latin1"), Buffer.from("\nUSE `", "latin1"), Buffer.from("\nDELIMITER ", "latin1")];
// Longer than any statement head looked at here (a name is at most 64 characters, 256 bytes with ` doubled).
const CARRY = 1024;
// A needle cut by a chunk boundary starts within this many bytes of the chunk's end.
const KEEP = Math.max(...NEEDLES.map((n) => n.length)) - 1;

/**
 * Collects the inventory keys of the tables a dump creates, from its stream, chunk by chunk, without copying it:
 * only CREATE TABLE and USE lines are read, and none inside routine bodies (under another DELIMITER).
 */
export class DumpTables {
  readonly #tables = new Set<string>();
  #database: string | undefined;
  #delimiter = ";";
  /** The stream's last bytes before the current chunk that may start a statement line not yet read. */
  #carry = Buffer.alloc(0);

  /** database: the one a single-database dump (which has no USE lines) writes to. */
  constructor(database?: string) {
    this.#database = database;
  }

  /** The keys of the tables the dump created so far. */
  get keys(): ReadonlySet<string> {
    return this.#tables;
  }

  push(chunk: Buffer): void {
    if (this.#carry.length > 0) {
      // Lines starting in the carry, read with enough of this chunk to finish them.
      const window = Buffer.concat([this.#carry, chunk.subarray(0, CARRY)]);
      const cut = this.#scan(window, this.#carry.length);
      if (cut !== undefined && chunk.length < CARRY) {
        const rest = Buffer.concat([this.#carry.subarray(cut), chunk]);
        // Beyond any real statement head: never a line worth waiting for.
        this.#carry = rest.length <= 2 * CARRY ? rest : Buffer.from(rest.subarray(rest.length - KEEP));
        return;
      }
    }
    const cut = this.#scan(chunk, chunk.length);
    if (cut !== undefined && chunk.length - cut <= CARRY) this.#carry = Buffer.from(chunk.subarray(cut));
    else if (chunk.length >= KEEP) this.#carry = Buffer.from(chunk.subarray(chunk.length - KEEP));
    // A complete line needs more than KEEP bytes, so none already read can start in what is kept.
    else this.#carry = Buffer.concat([this.#carry, chunk]).subarray(-KEEP);
  }

  /**
   * Reads the statement lines whose newline is before `limit` in buf, in order. Returns where the first one that
   * buf cuts short starts (nothing after it is read), or undefined.
   */
  #scan(buf: Buffer, limit: number): number | undefined {
    const hits: [number, number][] = [];
    NEEDLES.forEach((needle, kind) => {
      for (let at = buf.indexOf(needle); at >= 0 && at < limit; at = buf.indexOf(needle, at + 1)) hits.push([at, kind]);
    });
    hits.sort((a, b) => a[0] - b[0]);
    for (const [at, kind] of hits) {
      const start = at + (NEEDLES[kind] as Buffer).length;
      if (kind === 2) {
        const end = buf.indexOf(10, start);
        if (end < 0) return at;
        this.#delimiter = buf.toString("latin1", start, end).trim();
        continue;
      }
      const name = quoted(buf, start);
      if (name === undefined) return at;
      if (this.#delimiter !== ";") continue;
      if (kind === 1) this.#database = name;
      else if (this.#database !== undefined) this.#tables.add(tableKey(this.#database, name));
    }
    return undefined;
  }
}

/** The name quoted with backticks that starts after the opening one at `start`, or undefined if buf ends first. */
function quoted(buf: Buffer, start: number): string | undefined {
  let i = start;
  for (;;) {
    const q = buf.indexOf(96, i);
    if (q < 0) return undefined;
    if (buf[q + 1] === 96) {
      i = q + 2;
      continue;
    }
    if (q + 1 >= buf.length) return undefined; // a doubled backtick may follow in the next chunk
    return buf.toString("utf8", start, q).replace(/``/g, "`");
  }
}
