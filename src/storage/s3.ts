import { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { S3TargetConfig } from "../config/schema.ts";
import { code, LifeboatError, messageOf, NotFoundError } from "../errors.ts";
import { redact, stripPassword } from "../secret.ts";
import { checkKey } from "./filesystem.ts";
import type { GetOptions, PutOptions, StoredObject, Target } from "./target.ts";

/** Tuning that does not belong in backup.config.ts. */
export interface S3TargetOptions {
  /** Milliseconds to wait for a TCP connection. Short, so an unreachable endpoint fails in seconds. Default 5000. */
  connectionTimeoutMs?: number;
  /** Milliseconds a connection may sit idle mid-request before it fails. Default 120000. */
  idleTimeoutMs?: number;
}

const MiB = 1024 * 1024;

/** Error codes of Node and the SDK's HTTP handler that mean the endpoint could not be reached at all. */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET"]);

/** Error codes S3 (and compatible servers) use for bad or insufficient credentials. */
const DENIED: Record<string, string> = {
  AccessDenied: "access denied",
  AllAccessDisabled: "access denied",
  InvalidAccessKeyId: "the access key id is not known to the server",
  SignatureDoesNotMatch: "the secret access key does not match the access key id",
  ExpiredToken: "the session token has expired",
  InvalidToken: "the session token is invalid",
  TokenRefreshRequired: "the session token has expired",
  CredentialsProviderError: "no credentials found",
};

/** The parts of an SDK error this file looks at. */
interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number };
}

/**
 * An S3 bucket (AWS or an S3-compatible server) under an optional key prefix.
 * put streams through @aws-sdk/lib-storage (multipart for bodies over one part), and a failed or aborted put
 * aborts its multipart upload before it rejects, so no parts are left behind to be billed.
 * Requests are tried once: retrying belongs to a wrapper (DESIGN.md), not to every backend.
 */
export class S3Target implements Target {
  readonly kind = "s3";
  readonly name: string;
  readonly #config: S3TargetConfig;
  readonly #client: S3Client;
  /** "prod/" for prefix "/prod/", "" for no prefix. */
  readonly #prefix: string;

  constructor(name: string, config: S3TargetConfig, options: S3TargetOptions = {}) {
    this.name = name;
    this.#config = config;
    const prefix = config.prefix.split("/").filter(Boolean).join("/");
    this.#prefix = prefix === "" ? "" : `${prefix}/`;
    this.#client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      // Without static credentials the SDK's default chain applies (environment, profile, instance role).
      // A copy: the SDK annotates the object it is given ($source), which would leak into the caller's config.
      credentials: config.credentials ? { ...config.credentials } : undefined,
      // The SDK's default request checksums (CRC32 trailers) are rejected by several S3-compatible servers;
      // integrity is covered by the sha256 of every object in the manifest.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 1,
      // The options form builds the SDK's own NodeHttpHandler, without importing @smithy/node-http-handler
      // (not a direct dependency). socketTimeout is an idle timeout, so long part uploads are not cut off.
      requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5_000, socketTimeout: options.idleTimeoutMs ?? 120_000 },
    });
  }

  /** Streams the body to the bucket (multipart above one part); see Target.put. Aborts the multipart upload on failure. */
  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<StoredObject> {
    const fullKey = this.#key(key);
    const { signal } = opts;
    if (signal?.aborted) throw this.#aborted(key, signal);
    let size = 0;
    let bodyError: { error: unknown } | undefined;
    // Reading through a generator counts the bytes (the writer credential may lack GetObject, so no HEAD afterwards)
    // and records the body's own error, which lib-storage would otherwise mix with request errors.
    async function* counted(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of body) {
          const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
          size += buf.length;
          yield buf;
        }
      } catch (error) {
        bodyError = { error };
        throw error;
      }
    }
    const source = Readable.from(counted(), { objectMode: false });
    // Destroying the body (not upload.abort()) ends the upload through its normal failure path, so done() settles only
    // after lib-storage has sent AbortMultipartUpload; upload.abort() would reject at once and abort in the background.
    const onAbort = () => body.destroy(Object.assign(new Error("put aborted"), { name: "AbortError" }));
    signal?.addEventListener("abort", onAbort, { once: true });
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#config.bucket, Key: fullKey, Body: source, ContentType: opts.contentType },
      partSize: this.#config.partSizeMiB * MiB,
      queueSize: this.#config.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      // Stop the producer too: the body is useless now, and a stream nobody reads would stall a fan-out.
      body.destroy();
      if (signal?.aborted) throw this.#aborted(key, signal);
      if (bodyError) throw bodyError.error;
      throw this.#fail(`upload "${key}"`, err);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      source.destroy();
    }
    return { key, size, modified: new Date() };
  }

  /** Opens the object (optionally a byte range). Rejects with NotFoundError for a missing key. */
  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const { range, signal } = opts;
    const command = new GetObjectCommand({
      Bucket: this.#config.bucket,
      Key: this.#key(key),
      Range: range ? `bytes=${range.start}-${range.end ?? ""}` : undefined,
    });
    try {
      const res = await this.#client.send(command, { abortSignal: signal });
      return res.Body as Readable;
    } catch (err) {
      const e = err as SdkError;
      if (e.name === "NoSuchKey" || e.Code === "NoSuchKey") {
        throw new NotFoundError(`target "${this.name}": object "${key}" not found`, { cause: err });
      }
      throw this.#fail(`get "${key}"`, err);
    }
  }

  /** Lists objects whose keys start with prefix, in key order, following ListObjectsV2 pages. */
  async *list(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#config.bucket, Prefix: this.#prefix + prefix, ContinuationToken: token }),
        );
      } catch (err) {
        throw this.#fail(`list "${prefix}"`, err);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key?.startsWith(this.#prefix)) {
          yield { key: o.Key.slice(this.#prefix.length), size: o.Size ?? 0, modified: o.LastModified };
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Size and time of one object, or undefined on 404 (a HEAD response has no body, so a missing bucket looks the same). */
  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(key) }));
      return { key, size: res.ContentLength ?? 0, modified: res.LastModified };
    } catch (err) {
      const e = err as SdkError;
      if (e.$metadata?.httpStatusCode === 404 || e.name === "NotFound") return undefined;
      throw this.#fail(`head "${key}"`, err);
    }
  }

  /** Deletes the object; S3 answers a missing key with success, so this is idempotent. */
  async remove(key: string): Promise<void> {
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(key) }));
    } catch (err) {
      if ((err as SdkError).name === "NoSuchKey") return;
      throw this.#fail(`remove "${key}"`, err);
    }
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    this.#client.destroy();
  }

  #key(key: string): string {
    checkKey(this.name, key);
    return this.#prefix + key;
  }

  #aborted(key: string, signal: AbortSignal): LifeboatError {
    return new LifeboatError(code.aborted, `target "${this.name}": put "${key}" aborted`, { cause: signal.reason });
  }

  /** Turns any SDK or network error into a LifeboatError naming the target and the fix; the one place errors are mapped. */
  #fail(operation: string, err: unknown): LifeboatError {
    if (err instanceof LifeboatError) return err;
    const e = (err ?? {}) as SdkError;
    const name = e.Code ?? e.name ?? "";
    const { bucket, region, endpoint } = this.#config;
    const at = `target "${this.name}"`;
    // Messages may echo request details; never let a secret through.
    const secrets = [this.#config.credentials?.secretAccessKey, this.#config.credentials?.sessionToken].filter((s) => s !== undefined);
    const first = e.errors?.[0] as SdkError | undefined; // AggregateError from dual-stack connects has an empty message
    const detail = redact(e.message || first?.message || e.code || name || messageOf(err), secrets);
    if (name === "TimeoutError" || UNREACHABLE.has(e.code ?? "")) {
      return new LifeboatError(code.storage, `${at}: cannot reach ${endpoint ? shown(endpoint) : `AWS S3 (${region})`} (${detail})`, {
        cause: err,
        hint: "check the endpoint URL and that the server is up and reachable from this host (network, firewall, DNS)",
      });
    }
    if (name === "NoSuchBucket") {
      return new LifeboatError(code.storage, `${at}: bucket "${bucket}" not found`, {
        cause: err,
        hint: `check the bucket name and region ("${region}")${endpoint ? " and the endpoint" : ""}`,
      });
    }
    if (name in DENIED || e.$metadata?.httpStatusCode === 403) {
      const what = DENIED[name] ?? "access denied";
      return new LifeboatError(code.storage, `${at}: ${operation} in bucket "${bucket}": ${what} (${name || 403})`, {
        cause: err,
        hint: this.#config.credentials
          ? "check the target's accessKeyId and secretAccessKey, and that the key's policy allows this operation on the bucket"
          : "no credentials are configured for this target, so the SDK's default chain was used (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance role); check which one applies and what it may do",
      });
    }
    if (name === "PermanentRedirect" || name === "AuthorizationHeaderMalformed" || e.$metadata?.httpStatusCode === 301) {
      return new LifeboatError(code.storage, `${at}: bucket "${bucket}" is not in region "${region}"`, {
        cause: err,
        hint: "set the target's region to the bucket's region",
      });
    }
    if (name === "AbortError") {
      return new LifeboatError(code.aborted, `${at}: ${operation} aborted`, { cause: err });
    }
    return new LifeboatError(code.storage, `${at}: ${operation}: ${detail}`, { cause: err });
  }
}

/** The endpoint as configured, unless it carries a password (then with the password redacted). */
function shown(endpoint: string): string {
  return URL.canParse(endpoint) && new URL(endpoint).password ? stripPassword(endpoint) : endpoint;
}
