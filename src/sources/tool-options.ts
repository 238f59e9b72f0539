// How dump tools read their command-line options, so that refusing one cannot be sidestepped by another spelling.
// getopt_long (pg_dump) and MySQL's my_getopt (mariadb-dump, mysqldump) both accept any unambiguous prefix of a
// long option; my_getopt also treats "_" as "-" and understands loose-, skip-, disable-, enable- and false values.

/** A long option as written: "--name=value". */
interface LongOption {
  name: string;
  value: string | undefined;
}

function splitLong(arg: string): LongOption | undefined {
  if (!arg.startsWith("--") || arg.length === 2) return undefined;
  const eq = arg.indexOf("=");
  return eq < 0 ? { name: arg.slice(2), value: undefined } : { name: arg.slice(2, eq), value: arg.slice(eq + 1) };
}

/** Whether a tool may take `given` for `option`: the name in full or any prefix of it. */
function mayName(given: string, option: string): boolean {
  return given.length > 0 && option.startsWith(given);
}

const FALSE_VALUES = new Set(["0", "false", "off", "no"]);

/** The names my_getopt may read an argument as: "--skip_add-locks", "--disable-add-locks", "--add-locks=0" → "skip-add-locks". */
function mysqlNames(opt: LongOption): string[] {
  let n = opt.name.replace(/_/g, "-");
  while (n.startsWith("loose-")) n = n.slice("loose-".length);
  if (n.startsWith("disable-")) n = `skip-${n.slice("disable-".length)}`;
  else if (n.startsWith("enable-")) n = n.slice("enable-".length);
  // A value option ("--port=0") keeps its plain name too.
  const off = !n.startsWith("skip-") && opt.value !== undefined && FALSE_VALUES.has(opt.value.toLowerCase());
  return off ? [n, `skip-${n}`] : [n];
}

/** The rules of one tool's options. */
export interface ToolOptions {
  /** my_getopt's spellings (MySQL tools) rather than getopt_long's. */
  mysql?: boolean;
  /** Short option letters that take a value: the rest of their cluster is that value, not more options. */
  shortWithValue?: string;
}

/**
 * The option among `longs` (names without dashes) or `shorts` (letters) that `arg` may select, as "--name" or
 * "-x"; undefined when it selects none. A long name matches by prefix, as the tool would read it; a short cluster
 * ("-vf out") is read letter by letter up to the first letter that takes a value.
 */
export function selectsOption(
  arg: string,
  longs: readonly string[],
  shorts: string,
  rules: ToolOptions = {},
  /** Long names that also match every option under them ("ssl" → "ssl-key"). */
  families: readonly string[] = [],
): string | undefined {
  const opt = splitLong(arg);
  if (opt) {
    for (const n of rules.mysql ? mysqlNames(opt) : [opt.name]) {
      const family = families.find((f) => n.startsWith(`${f}-`));
      if (family) return `--${family}-…`;
      const hit = longs.find((l) => mayName(n, l));
      if (hit) return `--${hit}`;
    }
    return undefined;
  }
  if (!arg.startsWith("-") || arg.length < 2) return undefined;
  for (const c of arg.slice(1)) {
    if (shorts.includes(c)) return `-${c}`;
    if (rules.shortWithValue?.includes(c)) return undefined;
  }
  return undefined;
}
