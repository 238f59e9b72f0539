/** A value that must never be printed: toString, toJSON and util.inspect all show a placeholder. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The real value; call only where it is handed to a library that needs it. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}

/** The placeholder shown instead of a secret. */
export const REDACTED = "**redacted**";

/** Removes the password from a connection URL so it can be logged or stored. Non-URLs are returned unchanged. */
export function stripPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = REDACTED;
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) u.searchParams.set(key, REDACTED);
    }
    return u.toString().replace(encodeURIComponent(REDACTED), REDACTED);
  } catch {
    return url;
  }
}

/** A connection URL fit for messages: password removed, also from URLs that do not parse as URLs. */
export function displayUrl(url: string): string {
  return redact(stripPassword(url));
}

/** Replaces every occurrence of the given secrets and any URL password in free text (error messages, tool stderr). */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
  out = out.replace(/AGE-SECRET-KEY-[0-9A-Z-]+/g, REDACTED);
  return out.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+):([^@\s]+)@/gi, `$1:${REDACTED}@`);
}
