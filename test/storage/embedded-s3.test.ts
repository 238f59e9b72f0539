import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMBEDDED_S3_CREDENTIALS } from "../../src/storage/embedded-s3.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// The embedded server completes multipart uploads as S3 does; lifeboat's client is tested against it, so it must
// refuse what S3 refuses.
let s3: S3TestServer;
let client: S3Client;
beforeAll(async () => {
  s3 = await startS3Server();
  client = new S3Client({
    region: "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { ...EMBEDDED_S3_CREDENTIALS },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

const md5 = (b: Buffer) => createHash("md5").update(b).digest();

async function upload(key: string, bodies: Buffer[]): Promise<{ uploadId: string; etags: string[] }> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
  const uploadId = UploadId as string;
  const etags: string[] = [];
  for (const [i, Body] of bodies.entries()) {
    const r = await client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body }));
    etags.push(r.ETag as string);
  }
  return { uploadId, etags };
}

function complete(key: string, uploadId: string, parts: { PartNumber: number; ETag: string }[]) {
  return client.send(
    new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
  );
}

describe("embedded S3: CompleteMultipartUpload", () => {
  it("joins the parts in order and answers with S3's multipart ETag", async () => {
    const bodies = [randomBytes(5 * 1024 * 1024 + 17), randomBytes(4 * 1024 * 1024 + 3), randomBytes(1000)];
    const { uploadId, etags } = await upload("a/joined", bodies);
    const done = await complete(
      "a/joined",
      uploadId,
      etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })),
    );
    const expectedEtag = `"${createHash("md5")
      .update(Buffer.concat(bodies.map(md5)))
      .digest("hex")}-3"`;
    expect(done.ETag).toBe(expectedEtag);
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "a/joined" }));
    const bytes = Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    expect(bytes.equals(Buffer.concat(bodies))).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: "a/joined" }));
    expect(head.ETag).toBe(expectedEtag);
    expect(head.ContentLength).toBe(bytes.length);
  });

  it("stores parts of one size in place, as their Content-Length announced them", async () => {
    const bodies = [randomBytes(5 * 1024 * 1024), randomBytes(5 * 1024 * 1024), randomBytes(999)];
    const { uploadId, etags } = await upload("a/in-place", bodies);
    const uploadDir = join(s3.directory, s3.bucket, "._S3rver_uploads", uploadId);
    const records = await Promise.all([1, 2, 3].map(async (n) => JSON.parse(await readFile(join(uploadDir, `${n}.json`), "utf8"))));
    expect(records.map((r) => r.offset)).toEqual([0, 5 * 1024 * 1024, 10 * 1024 * 1024]);
    await complete(
      "a/in-place",
      uploadId,
      etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })),
    );
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "a/in-place" }));
    const bytes = Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    expect(bytes.equals(Buffer.concat(bodies))).toBe(true);
  });

  it("refuses a part whose ETag does not match, and parts out of order, leaving the upload open", async () => {
    const bodies = [randomBytes(6 * 1024 * 1024), randomBytes(100)];
    const { uploadId, etags } = await upload("a/refused", bodies);
    const wrong = `"${createHash("md5").update("something else").digest("hex")}"`;
    await expect(
      complete("a/refused", uploadId, [
        { PartNumber: 1, ETag: etags[0] as string },
        { PartNumber: 2, ETag: wrong },
      ]),
    ).rejects.toMatchObject({ name: "InvalidPart" });
    await expect(
      complete("a/refused", uploadId, [
        { PartNumber: 2, ETag: etags[1] as string },
        { PartNumber: 1, ETag: etags[0] as string },
      ]),
    ).rejects.toMatchObject({ name: "InvalidPartOrder" });
    await expect(complete("a/refused", uploadId, [{ PartNumber: 3, ETag: etags[0] as string }])).rejects.toMatchObject({
      name: "InvalidPart",
    });
    await expect(client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: "a/refused" }))).rejects.toMatchObject({ name: "NotFound" });
    // Still open: completing it properly works.
    await complete(
      "a/refused",
      uploadId,
      etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })),
    );
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: "a/refused" }));
    expect(head.ContentLength).toBe(6 * 1024 * 1024 + 100);
  });
});

describe("embedded S3: ListObjectsV2", () => {
  it("pages past 1000 keys with continuation tokens, in byte order, and refuses a token it did not issue", async () => {
    const prefix = `list-${randomBytes(3).toString("hex")}/`;
    // Non-ASCII names sort by their UTF-8 bytes, after every ASCII one; with 12 of them the second page holds
    // both kinds, so the token must carry a plain key and the page after it the rest in order.
    const keys = [
      ...Array.from({ length: 1000 }, (_, i) => `${prefix}k${String(i).padStart(4, "0")}`),
      ...Array.from({ length: 12 }, (_, i) => `${prefix}ü${String.fromCharCode(97 + i)}`),
    ];
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((Key) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: "x" }))));
    }
    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, MaxKeys: 700, ContinuationToken: token }),
      );
      pages.push((page.Contents ?? []).map((o) => o.Key ?? ""));
      expect(page.KeyCount).toBe(pages.at(-1)?.length);
      if (token) expect(page.ContinuationToken).toBe(token);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(pages.map((p) => p.length)).toEqual([700, 312]);
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(pages.flat()).toEqual(sorted);

    const bad = await client
      .send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: "not-a-token" }))
      .catch((e: unknown) => e as { name?: string; $metadata?: { httpStatusCode?: number } });
    expect(bad).toMatchObject({ name: "InvalidArgument", $metadata: { httpStatusCode: 400 } });
  });
});
