/** Machine-readable error codes; each maps to one CLI exit code in src/cli/exit.ts. */
export const code = {
  /** The config is invalid or unsafe (exit 2). */
  config: "CONFIG",
  /** The command line was wrong (exit 2). */
  usage: "USAGE",
  /** A safety guard refused a destructive or unsafe operation (exit 3). */
  refused: "REFUSED",
  /** An object or snapshot does not exist (exit 1). */
  notFound: "NOT_FOUND",
  /** Stored data failed an integrity check (exit 1). */
  integrity: "INTEGRITY",
  /** A source (database, directory) failed (exit 1). */
  source: "SOURCE",
  /** A storage target failed (exit 1). */
  storage: "STORAGE",
  /** Encryption or decryption failed, e.g. a wrong key (exit 1). */
  crypto: "CRYPTO",
  /** The operation was aborted (signal) (exit 1). */
  aborted: "ABORTED",
  /** Anything else that made an operation fail (exit 1). */
  failed: "FAILED",
} as const;

/** One of the error codes. */
export type ErrorCode = (typeof code)[keyof typeof code];

/** Options shared by every lifeboat error. */
export interface LifeboatErrorOptions {
  cause?: unknown;
  /** What the user can do about it. */
  hint?: string;
}

/** Base of every error lifeboat raises on purpose: a code, a message naming the thing, and a hint naming the fix. */
export class LifeboatError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  constructor(errCode: ErrorCode, message: string, opts: LifeboatErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "LifeboatError";
    this.code = errCode;
    this.hint = opts.hint;
  }
}

/** Invalid or unsafe configuration. */
export class ConfigError extends LifeboatError {
  constructor(message: string, opts: LifeboatErrorOptions = {}) {
    super(code.config, message, opts);
    this.name = "ConfigError";
  }
}

/** A safety guard refused the operation. */
export class RefusedError extends LifeboatError {
  constructor(message: string, opts: LifeboatErrorOptions = {}) {
    super(code.refused, message, opts);
    this.name = "RefusedError";
  }
}

/** A key or snapshot that does not exist. Targets reject with this, and only this, for a missing key. */
export class NotFoundError extends LifeboatError {
  constructor(message: string, opts: LifeboatErrorOptions = {}) {
    super(code.notFound, message, opts);
    this.name = "NotFoundError";
  }
}

/** Stored bytes do not match what the manifest promises (hash, size, authentication tag, truncation). */
export class IntegrityError extends LifeboatError {
  constructor(message: string, opts: LifeboatErrorOptions = {}) {
    super(code.integrity, message, opts);
    this.name = "IntegrityError";
  }
}

/** Wraps any error with a short phrase naming the operation, keeping the original as cause. LifeboatErrors keep their code and hint. */
export function wrap(operation: string, err: unknown, fallback: ErrorCode = code.failed): LifeboatError {
  if (err instanceof LifeboatError) {
    const wrapped = new LifeboatError(err.code, `${operation}: ${err.message}`, { cause: err, hint: err.hint });
    wrapped.name = err.name;
    return wrapped;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new LifeboatError(fallback, `${operation}: ${message}`, { cause: err });
}

/**
 * The ABORTED error for `what`, with the signal's reason when it has one: "restore into X: aborted (interrupted by
 * SIGTERM)" tells a user what stopped the work, where a bare "aborted" does not.
 */
export function abortedError(what: string, signal?: AbortSignal): LifeboatError {
  const reason: unknown = signal?.reason;
  const why =
    reason instanceof Error && reason.name !== "AbortError" ? ` (${reason.message})` : typeof reason === "string" ? ` (${reason})` : "";
  return new LifeboatError(code.aborted, `${what}: aborted${why}`, reason === undefined ? {} : { cause: reason });
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
