import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Readable } from "node:stream";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type S3rver from "s3rver";
import { type PartRecord, PartStore } from "./embedded-s3-parts.ts";

/** The static credentials s3rver accepts. */
export const EMBEDDED_S3_CREDENTIALS = Object.freeze({ accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });

/** A running embedded S3 server. */
export interface EmbeddedS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** Stops the server and drops its open connections; the directory is left to the caller. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver (a devDependency: tests and the demo only) on loopback, storing buckets under directory.
 * s3rver 3.7 differs from S3 where lifeboat relies on S3; this fixes it in place so the Target contract holds:
 * it lacks AbortMultipartUpload and ListMultipartUploads (added from its on-disk layout, so "a failed put leaves no
 * parts" can be shown and tested), lists keys in directory-walk order instead of byte order (re-sorted), and reads
 * "Range: bytes=0-0" as the whole object (it tests the end with `if (end)`), completes multipart uploads without
 * checking the parts' ETags (see multipartParts), and answers a ListObjectsV2 page after the first with a 500 (its
 * continuation tokens use DES, which OpenSSL 3 refuses; see continuationTokens).
 */
export async function startEmbeddedS3(opts: { directory: string; port?: number }): Promise<EmbeddedS3> {
  // Imported lazily so that importing this module does not need the devDependency.
  const { default: S3rverClass } = await import("s3rver");
  const server = new S3rverClass({ address: "127.0.0.1", port: opts.port ?? 0, silent: true, directory: opts.directory });
  // Koa composes its middleware when listening, so an entry put first here runs before s3rver's router.
  const parts = new PartStore();
  server.middleware.unshift(multipartExtensions(opts.directory, parts), zeroEndRange);
  // Innermost, just before the router: it must see the response body before s3rver renders it as XML.
  server.middleware.splice(server.middleware.length - 1, 0, continuationTokens);
  sortListings(server.store);
  fixZeroEndRange(server.store);
  multipartParts(server.store, parts);
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    async stop() {
      const closing = server.close();
      server.httpServer?.closeAllConnections();
      await closing;
    },
  };
}

/** Creates a bucket on an embedded S3 server. */
export async function createBucket(endpoint: string, bucket: string): Promise<void> {
  const client = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: { ...EMBEDDED_S3_CREDENTIALS },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

type Middleware = S3rver["middleware"][number];
type Context = Parameters<Middleware>[0];

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const UPLOAD_ID = /^[0-9a-f]{1,64}$/;

/**
 * Handles GET /<bucket>?uploads (ListMultipartUploads) and DELETE /<bucket>/<key>?uploadId= (AbortMultipartUpload)
 * from s3rver's files: <directory>/<bucket>/._S3rver_uploads/<uploadId>/{key,metadata,...} (the parts: PartStore).
 * Signatures are not checked here; the server listens on loopback for tests only.
 */
function multipartExtensions(directory: string, parts: PartStore): Middleware {
  return async (ctx, next) => {
    const [bucketPart = "", ...keyParts] = ctx.path.slice(1).split("/");
    const bucket = decodeURIComponent(bucketPart);
    const key = keyParts.map(decodeURIComponent).join("/");
    const uploadId = ctx.query.uploadId;
    const isList = ctx.method === "GET" && key === "" && "uploads" in ctx.query;
    const isAbort = ctx.method === "DELETE" && key !== "" && typeof uploadId === "string";
    if ((!isList && !isAbort) || !BUCKET.test(bucket)) return next();
    const bucketDir = join(directory, bucket);
    if (!(await exists(bucketDir))) return xmlError(ctx, 404, "NoSuchBucket", "The specified bucket does not exist");
    const uploadsDir = join(bucketDir, "._S3rver_uploads");
    if (isList) return listUploads(ctx, bucket, uploadsDir);
    const id = uploadId as string;
    if ((await uploadKey(uploadsDir, id)) !== key) return xmlError(ctx, 404, "NoSuchUpload", "The specified upload does not exist.");
    await parts.forget(join(uploadsDir, id));
    ctx.status = 204;
  };
}

/** The key an open upload was started for, or undefined if there is no such upload (or the id is not one s3rver makes). */
async function uploadKey(uploadsDir: string, uploadId: string): Promise<string | undefined> {
  if (!UPLOAD_ID.test(uploadId)) return undefined;
  return readFile(join(uploadsDir, uploadId, "key"), "utf8").catch(() => undefined);
}

async function listUploads(ctx: Context, bucket: string, uploadsDir: string): Promise<void> {
  const prefix = typeof ctx.query.prefix === "string" ? ctx.query.prefix : "";
  const ids = await readdir(uploadsDir).catch(() => [] as string[]);
  const uploads: string[] = [];
  for (const id of ids.sort()) {
    const dir = join(uploadsDir, id);
    const key = await readFile(join(dir, "key"), "utf8").catch(() => undefined);
    if (key === undefined || !key.startsWith(prefix)) continue;
    const initiated = (await stat(dir)).birthtime.toISOString();
    uploads.push(`<Upload><Key>${esc(key)}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated></Upload>`);
  }
  ctx.type = "application/xml";
  ctx.body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Bucket>${esc(bucket)}</Bucket><Prefix>${esc(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
    `${uploads.join("")}</ListMultipartUploadsResult>`;
}

/** s3rver's controller drops a range end of "0"; "00" parses to the same number and passes its truthiness test. */
const zeroEndRange: Middleware = (ctx, next) => {
  const range = ctx.req.headers.range;
  if (range && /^bytes=\d+-0$/.test(range)) ctx.req.headers.range = `${range}0`;
  return next();
};

/** s3rver's store reads an end of 0 as "to the end"; serve "bytes=0-0" as the one byte it asks for. */
function fixZeroEndRange(store: S3rver["store"]): void {
  const original = store.getObject.bind(store);
  store.getObject = async (bucket, key, options) => {
    if (options?.end !== 0 || options.start !== 0) return original(bucket, key, options);
    const object = await original(bucket, key, { start: 0 });
    if (!object?.content) return object;
    const whole = object.content;
    const first: Buffer | undefined = await whole[Symbol.asyncIterator]()
      .next()
      .then((r) => r.value);
    whole.destroy();
    object.content = Readable.from(first ? [first.subarray(0, 1)] : []);
    object.range = { start: 0, end: 0 };
    return object;
  };
}

/**
 * UploadPart and CompleteMultipartUpload as S3 does them, stored by PartStore. s3rver's own answered UploadPart
 * before the part was on disk, completed without checking the parts' ETags, and joined the parts by streaming them
 * through fresh buffers and hashing the whole object again, at the end of the upload where nothing overlaps it.
 * Completion here checks every listed part (InvalidPart, InvalidPartOrder), usually renames instead of copying, and
 * answers with S3's multipart ETag (the MD5 of the parts' MD5s, "-<count>").
 */
function multipartParts(store: S3rver["store"], parts: PartStore): void {
  const require = createRequire(import.meta.url);
  // s3rver's own classes, so errors become its XML error responses and metadata is filtered as on every put.
  const S3Error = require("s3rver/lib/models/error.js") as new (code: string, message: string) => Error;
  const S3Object = require("s3rver/lib/models/object.js") as new (
    bucket: string,
    key: string,
    content: null,
    metadata: Record<string, string>,
  ) => { metadata: Record<string, string> };
  const openUpload = async (bucket: string, uploadId: string) => {
    const uploadsDir = store.getResourcePath(bucket, undefined, "uploads");
    const key = await uploadKey(uploadsDir, uploadId);
    if (key === undefined) throw new S3Error("NoSuchUpload", "The specified upload does not exist.");
    return { dir: join(uploadsDir, uploadId), key };
  };
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const { dir } = await openUpload(bucket, uploadId);
    const n = Number(partNumber);
    if (!Number.isInteger(n) || n < 1 || n > 10000) {
      throw new S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
    }
    const headers = (content as Readable & { headers?: Record<string, string | undefined> }).headers ?? {};
    const declared = Number(headers["x-amz-decoded-content-length"] ?? headers["content-length"]);
    const { size, md5 } = await parts.put(dir, n, content, declared);
    return { size, md5 };
  };
  store.putObjectMultipart = async (bucket, uploadId, listed) => {
    const { dir, key } = await openUpload(bucket, uploadId);
    const metadata = JSON.parse(await readFile(join(dir, "metadata"), "utf8")) as Record<string, string>;
    const records: PartRecord[] = [];
    for (const [i, part] of listed.entries()) {
      if (i > 0 && part.number <= (listed[i - 1]?.number ?? 0)) {
        throw new S3Error("InvalidPartOrder", "The list of parts was not in ascending order.");
      }
      const record = await parts.record(dir, part.number);
      if (record === undefined || record.md5 !== part.etag) {
        throw new S3Error("InvalidPart", "One or more of the specified parts could not be found or its entity tag did not match.");
      }
      records.push(record);
    }
    const size = await parts.join(dir, records, store.getResourcePath(bucket, key, "object"));
    const md5s = Buffer.concat(records.map((r) => Buffer.from(r.md5, "hex")));
    const etag = `${createHash("md5").update(md5s).digest("hex")}-${records.length}`;
    await store.putMetadata(bucket, key, new S3Object(bucket, key, null, metadata).metadata, etag);
    return { size, md5: etag };
  };
}

/** The last key of a truncated listing, reported by sortListings to continuationTokens within one request. */
const truncation = new AsyncLocalStorage<{ lastKey?: string }>();

/**
 * Makes ListObjects return keys in UTF-8 byte order, as S3 does (and as Target.list promises), with startAfter and
 * maxKeys applied after sorting so pagination neither skips nor repeats keys. Listings with a delimiter are left alone.
 * Inside a ListObjectsV2 request a truncated page is returned as complete and its last key handed to
 * continuationTokens: s3rver would build the continuation token with DES, which OpenSSL 3 refuses (a 500).
 */
function sortListings(store: S3rver["store"]): void {
  const original = store.listObjects.bind(store);
  const sorted: typeof original = async (bucket, options) => {
    if (options.delimiter) return original(bucket, options);
    const { startAfter = "", maxKeys = Number.POSITIVE_INFINITY, ...rest } = options;
    const all = await original(bucket, { ...rest, maxKeys: Number.POSITIVE_INFINITY });
    const bytes = (key: string) => Buffer.from(key, "utf8");
    const after = bytes(startAfter);
    const objects = all.objects
      .filter((o) => Buffer.compare(bytes(o.key), after) > 0)
      .sort((a, b) => Buffer.compare(bytes(a.key), bytes(b.key)));
    return { ...all, objects: objects.slice(0, maxKeys), isTruncated: objects.length > maxKeys };
  };
  store.listObjects = async (bucket, options) => {
    const result = await sorted(bucket, options);
    const page = truncation.getStore();
    if (!page || !result.isTruncated) return result;
    page.lastKey = result.objects.at(-1)?.key;
    return { ...result, isTruncated: false };
  };
}

/** A continuation token of the embedded server: the last key of the page before, base64url-encoded. */
const TOKEN_PREFIX = "lb1.";

/**
 * ListObjectsV2 pagination (GET /<bucket>?list-type=2): turns an incoming continuation-token into start-after for
 * s3rver, and puts IsTruncated, NextContinuationToken and the echoed ContinuationToken into the response.
 */
const continuationTokens: Middleware = async (ctx, next) => {
  const query = ctx.query as Record<string, string | undefined>;
  if (ctx.method !== "GET" || query["list-type"] !== "2" || query.delimiter) return next();
  const token = query["continuation-token"];
  if (token !== undefined) {
    if (!token.startsWith(TOKEN_PREFIX)) {
      return xmlError(ctx, 400, "InvalidArgument", "The continuation token provided is incorrect");
    }
    const { "continuation-token": _, ...rest } = query;
    ctx.query = { ...rest, "start-after": Buffer.from(token.slice(TOKEN_PREFIX.length), "base64url").toString("utf8") };
  }
  const page: { lastKey?: string } = {};
  await truncation.run(page, next);
  const result = (ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined)?.ListBucketResult;
  if (!result) return;
  if (token !== undefined) {
    delete result.StartAfter;
    result.ContinuationToken = token;
  }
  if (page.lastKey !== undefined) {
    result.IsTruncated = true;
    result.NextContinuationToken = TOKEN_PREFIX + Buffer.from(page.lastKey, "utf8").toString("base64url");
  }
};

function xmlError(ctx: Context, status: number, errorCode: string, message: string): void {
  ctx.status = status;
  ctx.type = "application/xml";
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${errorCode}</Code><Message>${esc(message)}</Message></Error>`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
