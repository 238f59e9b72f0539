import { userInfo } from "node:os";
import { ConfigError } from "../errors.ts";
import { displayUrl } from "../secret.ts";

/** What tells one kind of database URL from another. */
export interface UrlSpec {
  /** "postgres", "mysql": names the URL in messages and the expected scheme. */
  kind: string;
  /** Accepted schemes, with the colon ("postgres:"). */
  schemes: readonly string[];
  /** The query keywords both the library and the command-line tools honour; any other is refused. */
  keywords: ReadonlySet<string>;
  /** What "not a valid URL" adds, if anything. */
  invalidNote?: string;
  /** A valid example, for the hint. */
  example: string;
}

/** A database URL taken apart, and the means to report on it. */
export interface ConnectionUrl {
  url: URL;
  /** Query keywords, percent-decoded. */
  query: Record<string, string>;
  /** Percent-decodes a part; bad encoding is a ConfigError. */
  decode(s: string): string;
  /** A ConfigError naming the URL (its password hidden) and the example. */
  bad(why: string): ConfigError;
}

/** Parses the parts every database URL shares: scheme, percent-encoding, query keywords. */
export function parseConnectionUrl(text: string, spec: UrlSpec): ConnectionUrl {
  const bad = (why: string) => new ConfigError(`${spec.kind} URL ${displayUrl(text)}: ${why}`, { hint: `use ${spec.example}` });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(`not a valid URL${spec.invalidNote ? ` (${spec.invalidNote})` : ""}`);
  }
  if (!spec.schemes.includes(url.protocol)) throw bad(`scheme ${url.protocol} is not ${spec.kind}:`);
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad("bad percent-encoding");
    }
  };
  const query: Record<string, string> = {};
  // Split by hand: URLSearchParams turns "+" into a space, the database clients do not.
  for (const pair of url.search.slice(1).split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    if (!spec.keywords.has(key)) throw bad(`query parameter "${key}" is not supported (supported: ${[...spec.keywords].join(", ")})`);
    query[key] = decode(eq < 0 ? "" : pair.slice(eq + 1));
  }
  return { url, query, decode, bad };
}

/** The operating-system user, which the clients use when a URL names none; fallback when it cannot be read. */
export function osUser(fallback: string): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? fallback;
  }
}
