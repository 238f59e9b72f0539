import { isIP } from "node:net";
import { type Readable, Transform } from "node:stream";
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { keyPrefix, type S3TargetConfig, type TargetConfig } from "../config/schema.ts";
import { abortedError, code, LifeboatError, messageOf, NotFoundError } from "../errors.ts";
import { redact, stripPassword } from "../secret.ts";
import { checkKey } from "./filesystem.ts";
import { isUnlockedKey, parseSnapshotKey } from "./layout.ts";
import { GROWTH_PARTS, MAX_PARTS, nextPartSize } from "./part-sizes.ts";
import type { GetOptions, PutOptions, StoredObject, Target } from "./target.ts";

/** Tuning that does not belong in backup.config.ts. */
export interface S3TargetOptions {
  /** Milliseconds to wait for a TCP connection. Short, so an unreachable endpoint fails in seconds. Default 5000. */
  connectionTimeoutMs?: number;
  /** Milliseconds a connection may sit idle mid-request before it fails. Default 120000. */
  idleTimeoutMs?: number;
  /** Parts' worth of the current size after which an upload's part size doubles (part-sizes.ts). Default 1500. */
  growthParts?: number;
}

const MiB = 1024 * 1024;
const DAY_MS = 86_400_000;

/** What one stored object is put with: PutObject's input without the body, also spread into the multipart requests. */
type ObjectParams = Omit<PutObjectCommandInput, "Body">;

/** An S3 Object Lock retention as put on an object: its mode and when it ends. */
export interface ObjectLockRetention {
  mode: "GOVERNANCE" | "COMPLIANCE";
  retainUntil: Date;
}

/** What a bucket says about its own protection; "unknown" when the credential may not ask, "unsupported" when the server cannot. */
export interface BucketProtection {
  versioning: "enabled" | "suspended" | "off" | "unknown";
  objectLock: "enabled" | "disabled" | "unsupported" | "unknown";
  /** The bucket's default retention, applied by S3 to every new object version. */
  defaultRetention?: { mode: "GOVERNANCE" | "COMPLIANCE"; days: number };
  /** Why a value is unknown (denied, not implemented), for doctor's output. */
  notes: string[];
}

/**
 * The retention lifeboat puts on an object written now under key, or undefined when the target has no objectLock.
 * A snapshot's objects share one date, anchored at the snapshot's start (its id), so the manifest records exactly
 * what S3 holds; other keys are locked from now. Doctor canaries and tombstones are never locked (isUnlockedKey):
 * they are lifeboat's own bookkeeping and must stay removable.
 */
export function retentionFor(config: Pick<S3TargetConfig, "objectLock">, key: string, now: Date): ObjectLockRetention | undefined {
  if (!config.objectLock || isUnlockedKey(key)) return undefined;
  const snap = parseSnapshotKey(key);
  return lockFrom(config.objectLock, snap && snapshotStart(snap.snapshotId), now);
}

/** The retention every object of a snapshot gets on a target, for the manifest; undefined for targets without objectLock. */
export function snapshotRetention(config: TargetConfig | undefined, snapshotId: string, now = new Date()): ObjectLockRetention | undefined {
  if (config?.type !== "s3" || !config.objectLock) return undefined;
  return lockFrom(config.objectLock, snapshotStart(snapshotId), now);
}

function lockFrom(lock: NonNullable<S3TargetConfig["objectLock"]>, anchor: number | undefined, now: Date): ObjectLockRetention {
  const fromAnchor = anchor === undefined ? undefined : anchor + lock.days * DAY_MS;
  // S3 refuses a retain-until date in the past; a backup that ran longer than the lock falls back to "from now".
  const ok = fromAnchor !== undefined && fromAnchor > now.getTime() + 3_600_000;
  return { mode: lock.mode, retainUntil: new Date(ok ? fromAnchor : now.getTime() + lock.days * DAY_MS) };
}

/** Milliseconds of a snapshot id's start ("20261124T215300Z-3fa9"), parsed here because storage sits below the catalog. */
function snapshotStart(id: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]{4}$/.exec(id);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** Whether an error (or one of its causes) is S3 refusing the credential: AccessDenied, a bad key, or HTTP 403. */
export function isAccessDenied(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const s = e as SdkError;
    const name = s.Code ?? s.name ?? "";
    if (name in DENIED || s.$metadata?.httpStatusCode === 403) return true;
  }
  return false;
}

/** The commands that carry object data, whose bodies SigV4 would hash. */
const BODY_COMMANDS = new Set(["PutObjectCommand", "UploadPartCommand"]);
const NO_ETAG = "the server answered without an ETag, so nothing was stored: is the endpoint an S3-compatible server?";

/**
 * Whether request bodies to this endpoint are covered by the SigV4 signature: only over plain HTTP to a host other
 * than this one. HTTPS (AWS when no endpoint is set) protects them in transit already, as does loopback; the
 * manifest's sha256 and age's authentication cover every stored byte either way.
 */
export function signsPayload(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return false;
  const url = new URL(endpoint);
  if (url.protocol === "https:") return false;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost") || host === "::1") return false;
  return !(isIP(host) === 4 && host.startsWith("127."));
}

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
  readonly #growthParts: number;
  /** "prod/" for prefix "/prod/", "" for no prefix. */
  readonly #prefix: string;

  constructor(name: string, config: S3TargetConfig, options: S3TargetOptions = {}) {
    this.name = name;
    this.#config = config;
    this.#prefix = keyPrefix(config.prefix);
    this.#growthParts = options.growthParts ?? GROWTH_PARTS;
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
    // The SDK also takes its endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when the config names none: the body
    // may only go unsigned where that endpoint, too, is TLS or loopback.
    if (!signsPayload(config.endpoint ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined))) {
      // SigV4 signs a sha256 of every body the SDK holds in memory: a second pass over every byte uploaded (the
      // manifest's sha256 is the first). It guards the bytes between here and the server, which TLS already does
      // and which loopback never exposes; on plain HTTP to another host the parts stay signed.
      this.#client.middlewareStack.add(
        (next, context) => (args) => {
          const request = args.request as { headers?: Record<string, string> };
          // A value already set (a streaming checksum trailer) describes the body's encoding: left as it is.
          if (BODY_COMMANDS.has(context.commandName ?? "") && request.headers && !request.headers["x-amz-content-sha256"]) {
            request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
          }
          return next(args);
        },
        { step: "build", name: "lifeboatUnsignedPayload" },
      );
    }
  }

  /** Streams the body to the bucket (multipart above one part); see Target.put. Aborts the multipart upload on failure. */
  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<StoredObject> {
    const fullKey = this.#key(key);
    const { signal } = opts;
    if (signal?.aborted) throw this.#aborted(key, signal);
    let size = 0;
    let bodyError: { error: unknown } | undefined;
    // Reading through a generator counts the bytes (the writer credential may lack GetObject, so no HEAD afterwards)
    // and records the body's own error, which would otherwise be mixed with request errors.
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
    // Destroying the body ends the upload through its normal failure path, so put settles only after
    // AbortMultipartUpload was sent.
    const onAbort = () => body.destroy(Object.assign(new Error("put aborted"), { name: "AbortError" }));
    signal?.addEventListener("abort", onAbort, { once: true });
    const lock = retentionFor(this.#config, key, new Date());
    const params: ObjectParams = {
      Bucket: this.#config.bucket,
      Key: fullKey,
      ContentType: opts.contentType,
      // S3 demands a content checksum on every put that carries a retention; CRC32 makes the SDK checksum the
      // single put and each part (CreateMultipartUpload declares it). Only here: several S3-compatible servers
      // reject checksums, and a target without objectLock keeps the plain requests that work everywhere.
      ...(lock && { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.retainUntil, ChecksumAlgorithm: "CRC32" as const }),
    };
    try {
      await this.#upload(params, counted());
    } catch (err) {
      // Stop the producer too: the body is useless now, and a stream nobody reads would stall a fan-out.
      body.destroy();
      if (signal?.aborted) throw this.#aborted(key, signal);
      if (bodyError) throw bodyError.error;
      throw this.#fail(`upload "${key}"`, err);
    } finally {
      signal?.removeEventListener("abort", onAbort);
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
      return this.#guardBody(res.Body as Readable, key, signal);
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
      // Any web server answers 200 to a GET; only an S3 listing names its bucket and limits. Taken for an empty one,
      // a wrong endpoint would read as "no snapshots".
      if (page.Name === undefined && page.MaxKeys === undefined && page.KeyCount === undefined && page.IsTruncated === undefined) {
        throw new LifeboatError(code.storage, `target "${this.name}": list "${prefix}": the server's answer is not an S3 listing`, {
          hint: `check the endpoint${this.#config.endpoint ? ` (${shown(this.#config.endpoint)})` : ""}: is it an S3-compatible server, and is forcePathStyle right for it?`,
        });
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

  /**
   * Reads the bucket's versioning status and Object Lock configuration. A credential that may not ask gets "unknown"
   * (not an error: least-privilege keys often lack these reads); a server without the API gets "unsupported".
   * Rejects only when the bucket cannot be reached or does not exist.
   */
  async protection(): Promise<BucketProtection> {
    const out: BucketProtection = { versioning: "unknown", objectLock: "unknown", notes: [] };
    const Bucket = this.#config.bucket;
    try {
      const v = await this.#client.send(new GetBucketVersioningCommand({ Bucket }));
      out.versioning = v.Status === "Enabled" ? "enabled" : v.Status === "Suspended" ? "suspended" : "off";
    } catch (err) {
      // A server without versioning at all cannot keep overwritten versions either: "unknown" is the honest answer.
      this.#unknownOr("GetBucketVersioning", err, out.notes);
    }
    try {
      const l = await this.#client.send(new GetObjectLockConfigurationCommand({ Bucket }));
      const cfg = l.ObjectLockConfiguration;
      out.objectLock = cfg?.ObjectLockEnabled === "Enabled" ? "enabled" : "disabled";
      const r = cfg?.Rule?.DefaultRetention;
      if (r?.Mode && (r.Days || r.Years)) {
        out.defaultRetention = { mode: r.Mode as "GOVERNANCE" | "COMPLIANCE", days: r.Days ?? (r.Years ?? 0) * 365 };
      }
    } catch (err) {
      const name = (err as SdkError).Code ?? (err as SdkError).name;
      if (name === "ObjectLockConfigurationNotFoundError") out.objectLock = "disabled";
      else out.objectLock = this.#unknownOr("GetObjectLockConfiguration", err, out.notes);
    }
    return out;
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** Classifies a failed bucket-configuration read: denied → "unknown", not implemented → "unsupported"; else rejects. */
  #unknownOr(operation: string, err: unknown, notes: string[]): "unknown" | "unsupported" {
    const e = err as SdkError;
    const name = e.Code ?? e.name ?? "";
    if (name === "NotImplemented" || e.$metadata?.httpStatusCode === 501) {
      notes.push(`${operation}: not implemented by the server`);
      return "unsupported";
    }
    if (isAccessDenied(err)) {
      notes.push(`${operation}: denied to this credential`);
      return "unknown";
    }
    throw this.#fail(operation, err);
  }

  /**
   * Stores the chunks as one object: a single PutObject when they fit in one part, else a multipart upload with up to
   * queueSize parts in flight. Parts start at partSizeMiB and double as the upload grows (nextPartSize), so a stream
   * of unknown length fits S3's 10,000 parts. Part buffers are allocated once per size and reused (lib-storage's
   * Upload concatenated every part into fresh memory, which cost more CPU than the rest of the upload), and the part
   * being filled counts against queueSize, so memory stays at max(queueSize, 2) × the current part size.
   * Any failure (a request, or the chunks' source) cancels the parts in flight and aborts the multipart upload
   * before this rejects, so no parts are left behind.
   */
  async #upload(params: ObjectParams, chunks: AsyncIterable<Buffer>): Promise<void> {
    const client = this.#client;
    let partSize = this.#config.partSizeMiB * MiB;
    const queueSize = this.#config.queueSize;
    const buffers = Math.max(queueSize, 2);
    const spare: Buffer[] = [];
    let part: Buffer | undefined;
    let fill = 0;
    let sent = 0;
    let uploadId: string | undefined;
    let partNumber = 0;
    const parts: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    const cancel = new AbortController();
    let failure: { error: unknown } | undefined;

    const sendPart = async (buffer: Buffer, length: number, n: number): Promise<void> => {
      try {
        const r = await client.send(
          new UploadPartCommand({ ...params, UploadId: uploadId, PartNumber: n, Body: buffer.subarray(0, length) }),
          { abortSignal: cancel.signal },
        );
        if (!r.ETag) throw new Error(`part ${n}: the response carries no ETag`);
        const { ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256 } = r;
        parts.push({ PartNumber: n, ETag: r.ETag, ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256 });
      } catch (error) {
        failure ??= { error };
        cancel.abort();
      } finally {
        // A buffer of an earlier, smaller part size is dropped: the garbage collector frees it.
        if (buffer.length === partSize) spare.push(buffer);
      }
    };
    // A buffer for the next part, once fewer than `buffers` parts are in flight.
    const acquire = async (): Promise<Buffer> => {
      while (inFlight.size >= buffers && !failure) await Promise.race(inFlight);
      if (failure) throw failure.error;
      return spare.pop() ?? Buffer.allocUnsafe(partSize);
    };
    // Sends the full part buffer as the next part.
    const flush = async (full: Buffer): Promise<void> => {
      if (uploadId === undefined) {
        uploadId = (await client.send(new CreateMultipartUploadCommand(params))).UploadId;
        if (!uploadId) throw new Error("CreateMultipartUpload returned no UploadId");
      }
      while (inFlight.size >= queueSize && !failure) await Promise.race(inFlight);
      if (failure) throw failure.error;
      if (++partNumber > MAX_PARTS) {
        throw new Error(`the object needs more than ${MAX_PARTS} parts, more than S3 allows (objects are limited to 5 TiB)`);
      }
      const request: Promise<void> = sendPart(full, fill, partNumber).finally(() => inFlight.delete(request));
      inFlight.add(request);
      sent += fill;
      const next = nextPartSize(partSize, sent, this.#growthParts);
      if (next !== partSize) {
        partSize = next;
        spare.length = 0;
      }
      part = undefined;
      fill = 0;
    };

    try {
      for await (const chunk of chunks) {
        let off = 0;
        while (off < chunk.length) {
          // A full part is sent only once more data follows: a body of exactly one part is a single PutObject.
          if (part && fill === part.length) await flush(part);
          part ??= await acquire();
          const n = chunk.copy(part, fill, off);
          fill += n;
          off += n;
        }
        if (failure) throw failure.error;
      }
      if (uploadId === undefined) {
        const r = await client.send(new PutObjectCommand({ ...params, Body: part ? part.subarray(0, fill) : Buffer.alloc(0) }));
        // Every S3 server answers a stored object with its ETag; a 200 without one came from something else (a web
        // server or proxy at the endpoint's address) and stored nothing.
        if (!r.ETag) throw new Error(NO_ETAG);
        return;
      }
      if (part) await flush(part);
      await Promise.all(inFlight);
      if (failure) throw failure.error;
      parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      const done = await client.send(
        new CompleteMultipartUploadCommand({ ...params, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
      if (!done.ETag) throw new Error(NO_ETAG);
    } catch (err) {
      cancel.abort();
      await Promise.allSettled(inFlight);
      if (uploadId !== undefined) {
        const { Bucket, Key } = params;
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => {});
      }
      throw err;
    }
  }

  #key(key: string): string {
    checkKey(this.name, key);
    return this.#prefix + key;
  }

  #aborted(key: string, signal: AbortSignal): LifeboatError {
    return abortedError(`target "${this.name}": put "${key}"`, signal);
  }

  /**
   * The body of a GET, whose errors (a connection dropped or stalled mid-download) name the target and the object and
   * say what they are: a network failure, not damage to the snapshot. Unwrapped, the socket's bare "aborted" read
   * like an interrupt, and verify reported the object as corrupted.
   */
  #guardBody(body: Readable, key: string, signal?: AbortSignal): Readable {
    let bytes = 0;
    const guarded = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        cb(null, chunk);
      },
    });
    body.on("error", (err) => {
      if (signal?.aborted || err instanceof LifeboatError) return guarded.destroy(err);
      const detail = redact(messageOf(err), this.#secrets());
      guarded.destroy(
        new LifeboatError(code.storage, `target "${this.name}": get "${key}": the download broke off after ${bytes} bytes (${detail})`, {
          cause: err,
          hint: "the connection to the storage failed mid-download; this says nothing about the snapshot's integrity: run the command again",
        }),
      );
    });
    guarded.on("close", () => {
      if (!body.destroyed) body.destroy();
    });
    return body.pipe(guarded);
  }

  #secrets(): string[] {
    return [this.#config.credentials?.secretAccessKey, this.#config.credentials?.sessionToken].filter((s) => s !== undefined);
  }

  /**
   * Turns any SDK or network error of a request into a LifeboatError naming the target and the fix; the one place
   * request errors are mapped (a body that breaks off mid-download is #guardBody's).
   */
  #fail(operation: string, err: unknown): LifeboatError {
    if (err instanceof LifeboatError) return err;
    const e = (err ?? {}) as SdkError;
    const name = e.Code ?? e.name ?? "";
    const { bucket, region, endpoint } = this.#config;
    const at = `target "${this.name}"`;
    // Messages may echo request details; never let a secret through.
    const secrets = this.#secrets();
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
    const status = e.$metadata?.httpStatusCode;
    // For a bodiless or non-XML error answer the SDK names the error after the status ("NotFound") and says only
    // "UnknownError": no S3 error document came back.
    const notS3 =
      name === "UnknownError" || name === "" || e.message === "UnknownError" || /Deserialization error|XML parse error/.test(detail);
    if (status !== undefined && notS3) {
      // No S3 document came back: whatever answered is not speaking S3 (a web server, a proxy, a wrong path).
      return new LifeboatError(
        code.storage,
        `${at}: ${operation}: HTTP ${status} from ${endpoint ? shown(endpoint) : `AWS S3 (${region})`}, not an S3 answer`,
        {
          cause: err,
          hint: "check that the endpoint is the S3 API's address (not a web console or proxy page), and the bucket name",
        },
      );
    }
    return new LifeboatError(code.storage, `${at}: ${operation}: ${detail}`, { cause: err });
  }
}

/** The endpoint as configured, unless it carries a password (then with the password redacted). */
function shown(endpoint: string): string {
  return URL.canParse(endpoint) && new URL(endpoint).password ? stripPassword(endpoint) : endpoint;
}
