import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { type AddressInfo, createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3TargetConfig } from "../../src/config/schema.ts";
import { keyPrefix } from "../../src/config/schema.ts";
import { createBucket, EMBEDDED_S3_CREDENTIALS, startEmbeddedS3 } from "../../src/storage/embedded-s3.ts";

/** An embedded S3 server with one fresh bucket, for one test file. */
export interface S3TestServer {
  endpoint: string;
  bucket: string;
  /** The server's storage folder (s3rver's layout). */
  directory: string;
  /** A complete target config for the bucket (5 MiB parts, so multi-part uploads happen at test sizes). */
  config(prefix?: string): S3TargetConfig;
  /** Stops the server and deletes its directory. */
  stop(): Promise<void>;
}

/** A complete target config for a bucket on an embedded S3 server (5 MiB parts, so multi-part uploads happen at test sizes). */
export function embeddedTargetConfig(endpoint: string, bucket: string, prefix = ""): S3TargetConfig {
  return {
    type: "s3",
    bucket,
    region: "us-east-1",
    prefix,
    endpoint,
    forcePathStyle: true,
    credentials: { ...EMBEDDED_S3_CREDENTIALS },
    partSizeMiB: 5,
    queueSize: 4,
    boundary: "test:s3rver",
    roles: {},
    requireImmutable: false,
  };
}

/** Starts s3rver on a random loopback port in a temp directory and creates a randomly named bucket. */
export async function startS3Server(): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), "lifeboat-s3-"));
  const server = await startEmbeddedS3({ directory });
  const bucket = `test-${randomBytes(4).toString("hex")}`;
  await createBucket(server.endpoint, bucket);
  return {
    endpoint: server.endpoint,
    bucket,
    directory,
    config: (prefix = "") => embeddedTargetConfig(server.endpoint, bucket, prefix),
    async stop() {
      await server.stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A plain SDK client for the config's bucket, to look at what a target stored without going through it. */
function clientFor(config: S3TargetConfig): S3Client {
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    credentials: config.credentials ? { ...config.credentials } : undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/** The stored object's ETag, unquoted; for a multipart upload S3's "<md5 of the parts' md5s>-<part count>". */
export async function storedETag(config: S3TargetConfig, key: string): Promise<string> {
  const client = clientFor(config);
  try {
    const res = await client.send(new HeadObjectCommand({ Bucket: config.bucket, Key: keyPrefix(config.prefix) + key }));
    return (res.ETag ?? "").replaceAll('"', "");
  } finally {
    client.destroy();
  }
}

/** Keys of unfinished multipart uploads under the config's prefix (ListMultipartUploads): what a failed put must not leave. */
export async function multipartLeftovers(config: S3TargetConfig): Promise<string[]> {
  const client = clientFor(config);
  try {
    const res = await client.send(new ListMultipartUploadsCommand({ Bucket: config.bucket, Prefix: config.prefix }));
    return (res.Uploads ?? []).map((u) => u.Key ?? "");
  } finally {
    client.destroy();
  }
}

/**
 * A TCP proxy in front of an S3 endpoint that cuts each connection once it has passed `cutAfter` bytes of the server's
 * answers: a network that drops mid-download. Returns the proxy's endpoint and how to close it.
 */
export async function startCuttingProxy(endpoint: string, cutAfter: number): Promise<{ endpoint: string; close(): Promise<void> }> {
  const upstream = new URL(endpoint);
  const proxy = createServer((client) => {
    const server = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
    let passed = 0;
    client.pipe(server);
    server.on("data", (chunk: Buffer) => {
      passed += chunk.length;
      if (passed > cutAfter) {
        client.destroy();
        server.destroy();
      } else client.write(chunk);
    });
    client.on("error", () => server.destroy());
    server.on("error", () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const { port } = proxy.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, close: () => new Promise((r) => proxy.close(() => r())) };
}
