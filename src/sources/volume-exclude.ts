import { ConfigError } from "../errors.ts";

/** Tells whether a path (relative to the volume root, "/"-separated) is left out of the backup. */
export type ExcludeTest = (rel: string, isDir: boolean) => boolean;

/**
 * Compiles a volume's exclude patterns into one test. The rules are a small, gitignore-like subset, chosen
 * because node's path.matchesGlob skips dot files ("cache/**" would keep "cache/.tmp/x"):
 * - a pattern without a slash matches a name at any depth ("*.tmp", "node_modules");
 * - a pattern with a slash is anchored at the volume root ("cache/**", "/build"; the leading slash is optional);
 * - "*" matches within one name (dots included), "?" one character, "[abc]" / "[!abc]" a class,
 *   "**" as a whole segment any number of directories, "\" escapes the next character;
 * - a trailing "/" matches directories only; an excluded directory leaves out everything below it.
 * A name that is not valid UTF-8 is matched as the walk names it, with U+FFFD for each invalid byte sequence.
 * Throws ConfigError for an empty pattern, a negation ("!…", not supported) or an unclosed class.
 */
export function compileExcludes(patterns: readonly string[]): ExcludeTest {
  const compiled = patterns.map((p, i) => compileOne(p, i));
  if (compiled.length === 0) return () => false;
  return (rel, isDir) => compiled.some((c) => (isDir || !c.dirOnly) && c.re.test(rel));
}

interface Compiled {
  re: RegExp;
  dirOnly: boolean;
}

/** The fix named for every invalid pattern. */
export const EXCLUDE_HINT = 'use globs relative to the volume path, e.g. "cache/**" or "*.tmp"';

/**
 * Why a pattern is not a valid exclude ('"!foo" is a negation, which is not supported'), or undefined when it is.
 * Config validation calls it too, so a bad pattern is reported with its file and field when the config loads.
 */
export function excludePatternProblem(pattern: string): string | undefined {
  try {
    compileSource(pattern);
    return undefined;
  } catch (err) {
    if (err instanceof ExcludeSyntaxError) return `"${pattern}" ${err.message}`;
    throw err;
  }
}

/**
 * A pattern that excludes exactly the entry at rel (and, for a directory, everything below it): anchored with a
 * leading "/" (a bare name would match at any depth, and one starting with "!" would read as a negation) and with
 * the pattern characters of its names escaped. Names that are not valid UTF-8 are matched with U+FFFD for each bad
 * byte sequence, the form rel comes in.
 */
export function excludePatternFor(rel: string): string {
  return `/${rel.replace(/[\\*?[]/g, "\\$&")}`;
}

/** What is wrong with a pattern, worded to follow it ('"[abc" has an unclosed [ class'). */
class ExcludeSyntaxError extends Error {}

function compileOne(pattern: string, index: number): Compiled {
  try {
    return compileSource(pattern);
  } catch (err) {
    if (!(err instanceof ExcludeSyntaxError)) throw err;
    throw new ConfigError(`volume source: exclude.${index}: "${pattern}" ${err.message}`, { hint: EXCLUDE_HINT });
  }
}

function compileSource(pattern: string): Compiled {
  const bad = (why: string) => new ExcludeSyntaxError(why);
  if (pattern.trim() === "") throw bad("is empty");
  if (pattern.startsWith("!")) throw bad("is a negation, which is not supported");
  let p = pattern;
  const dirOnly = p.endsWith("/");
  p = p.replace(/\/+$/, "");
  const anchored = p.includes("/");
  p = p.replace(/^\/+/, "");
  if (p === "") throw bad("matches the volume root itself");
  const segments = p.split("/").filter((s) => s !== "");
  let body = "";
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === "**") {
      // Trailing "**" takes everything below; inner "**" takes zero or more whole directories.
      body += last ? ".*" : "(?:[^/]+/)*";
      return;
    }
    body += segmentSource(seg, bad) + (last ? "" : "/");
  });
  const source = anchored ? `^${body}$` : `^(?:.*/)?${body}$`;
  return { re: new RegExp(source, "s"), dirOnly };
}

function segmentSource(seg: string, bad: (why: string) => ExcludeSyntaxError): string {
  let out = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === "\\") {
      i++;
      if (i < seg.length) out += escapeRe(seg[i] as string);
      continue;
    }
    if (c === "*") {
      // Consecutive stars inside a name mean the same as one.
      while (seg[i + 1] === "*") i++;
      out += "[^/]*";
    } else if (c === "?") {
      out += "[^/]";
    } else if (c === "[") {
      const end = seg.indexOf("]", i + 2);
      if (end < 0) throw bad("has an unclosed [ class");
      let cls = seg.slice(i + 1, end);
      const negate = cls.startsWith("!") || cls.startsWith("^");
      if (negate) cls = cls.slice(1);
      out += `[${negate ? "^/" : ""}${cls.replace(/[\\\]]/g, "\\$&")}]`;
      i = end;
    } else {
      out += escapeRe(c);
    }
  }
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
