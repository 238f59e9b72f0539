/** The part of s3rver 3.7 (an S3 server for tests, written in JavaScript) that lifeboat uses. */
declare module "s3rver" {
  import type { IncomingMessage, Server, ServerResponse } from "node:http";
  import type { AddressInfo } from "node:net";

  /** The Koa context fields the embedded-S3 extensions read and write. */
  interface KoaContext {
    method: string;
    path: string;
    query: Record<string, string | string[] | undefined>;
    status: number;
    body: unknown;
    type: string;
    req: IncomingMessage;
    res: ServerResponse;
  }

  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }

  interface ListObjectsOptions {
    delimiter?: string;
    startAfter?: string;
    prefix?: string;
    maxKeys?: number;
  }

  interface ListObjectsResult {
    objects: { key: string }[];
    commonPrefixes: string[];
    isTruncated: boolean;
  }

  /** An object as the store returns it; content is absent for an unsatisfiable range. */
  interface StoredObject {
    key: string;
    content: import("node:stream").Readable | null;
    range?: { start: number; end: number };
  }

  class S3rver {
    /** The filesystem store behind the server. */
    store: {
      listObjects(bucket: string, options: ListObjectsOptions): Promise<ListObjectsResult>;
      getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<StoredObject | null>;
      /** <directory>/<bucket>/<encoded key path>._S3rver_<resource>; key undefined and "uploads" for the uploads folder. */
      getResourcePath(bucket: string, key: string | undefined, resource: string): string;
      putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5?: string): Promise<void>;
      /** partNumber is the query string's, unchecked; content is the request (IncomingMessage). */
      putPart(
        bucket: string,
        uploadId: string,
        partNumber: string,
        content: import("node:stream").Readable,
      ): Promise<{ md5: string; size: number }>;
      putObjectMultipart(
        bucket: string,
        uploadId: string,
        parts: { number: number; etag: string }[],
      ): Promise<{ md5: string; size: number }>;
    };
    constructor(options?: S3rverOptions);
    /** Koa's middleware stack; composed when the server starts listening. */
    middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void> | void)[];
    httpServer?: Server;
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
  export = S3rver;
}
