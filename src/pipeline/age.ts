import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { Decrypter, Encrypter, identityToRecipient, type Recipient } from "age-encryption";
import { code, IntegrityError, LifeboatError, messageOf } from "../errors.ts";

// The age v1 payload (https://age-encryption.org/v1): a 16-byte nonce, then ChaCha20-Poly1305 over 64 KiB chunks
// with a 12-byte nonce of an 11-byte big-endian counter and a last-chunk flag. The header (recipient stanzas and
// MAC) comes from age-encryption; the payload runs on Node's native cipher, which is an order of magnitude faster.
const CHUNK = 64 * 1024;
const TAG = 16;
const NONCE_PREFIX = 16;
const MAX_HEADER = 1024 * 1024;

function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", fileKey, nonce, "payload", 32));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  // 2^53 chunks of 64 KiB is far beyond any file; a JS number counter is exact there.
  n.writeUIntBE(Math.floor(counter / 2 ** 32), 3, 4);
  n.writeUInt32BE(counter >>> 0, 7);
  n[11] = last ? 1 : 0;
  return n;
}

/** Seals one payload chunk; returns its ciphertext and tag separately (they follow each other in the file). */
function sealChunk(key: KeyObject, counter: number, last: boolean, plain: Buffer): [Buffer, Buffer] {
  const c = createCipheriv("chacha20-poly1305", key, chunkNonce(counter, last), { authTagLength: TAG });
  const body = c.update(plain);
  c.final();
  return [body, c.getAuthTag()];
}

function openChunk(key: Buffer, counter: number, last: boolean, sealed: Buffer): Buffer {
  const d = createDecipheriv("chacha20-poly1305", key, chunkNonce(counter, last), { authTagLength: TAG });
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  const body = d.update(sealed.subarray(0, sealed.length - TAG));
  d.final();
  return body;
}

/** Finds the end of an age header (the byte after the MAC line's newline), or -1 if not yet buffered. */
function headerEnd(buf: Buffer): number {
  const mac = buf.indexOf("\n--- ");
  if (mac < 0) return -1;
  const nl = buf.indexOf("\n", mac + 5);
  return nl < 0 ? -1 : nl + 1;
}

/** Makes an age header and payload key for a new file encrypted to the recipients. Every call draws a new file key. */
async function newFile(recipients: readonly string[]): Promise<{ prelude: Buffer; key: Buffer }> {
  const e = new Encrypter();
  let fileKey: Uint8Array | undefined;
  for (const r of recipients) e.addRecipient(r);
  // A recipient that adds no stanza and only observes the file key, so the payload can be sealed natively.
  const observer: Recipient = {
    wrapFileKey(k) {
      fileKey = k;
      return [];
    },
  };
  e.addRecipient(observer);
  const empty = Buffer.from(await e.encrypt(new Uint8Array(0)));
  const end = headerEnd(empty);
  if (!fileKey || end < 0) throw new LifeboatError(code.crypto, "age header: could not create the file key");
  const nonce = empty.subarray(end, end + NONCE_PREFIX);
  return { prelude: Buffer.from(empty.subarray(0, end + NONCE_PREFIX)), key: payloadKey(fileKey, nonce) };
}

/** Checks that every recipient is one age-encryption accepts, naming the first bad one. */
export async function checkRecipients(recipients: readonly string[]): Promise<void> {
  for (const r of recipients) {
    try {
      const e = new Encrypter();
      e.addRecipient(r);
      await e.encrypt("");
    } catch (err) {
      throw new LifeboatError(code.config, `encryption.recipients: "${r}" is not a valid age recipient (${messageOf(err)})`, {
        hint: "use a public key printed by `lifeboat keygen` or `age-keygen -y identity.txt`",
      });
    }
  }
}

/** A Transform that age-encrypts its input to the recipients; the output decrypts with the stock `age -d`. */
export async function createEncryptStream(recipients: readonly string[]): Promise<Transform> {
  const { prelude, key: rawKey } = await newFile(recipients);
  // A KeyObject is imported once; a raw key would be imported again by every one of the ~16,000 ciphers per GiB.
  const key = createSecretKey(rawKey);
  // Plaintext of the chunk being gathered. Reused: sealing reads it synchronously, so nothing downstream holds it.
  const stage = Buffer.allocUnsafe(CHUNK);
  let fill = 0;
  let counter = 0;
  const seal = (t: Transform, plain: Buffer, last: boolean) => {
    const [body, tag] = sealChunk(key, counter++, last, plain);
    // Pushed as two buffers rather than concatenated: a copy of every byte saved.
    t.push(body);
    t.push(tag);
  };
  return new Transform({
    construct(cb) {
      this.push(prelude);
      cb();
    },
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      let off = 0;
      while (off < chunk.length) {
        // A full chunk is sealed only once more input follows: the last chunk carries a flag, so it waits for the end.
        if (fill === CHUNK) {
          seal(this, stage, false);
          fill = 0;
        }
        if (fill === 0 && chunk.length - off > CHUNK) {
          // Whole chunks inside the input (and not its end) are sealed in place, without a copy.
          seal(this, chunk.subarray(off, off + CHUNK), false);
          off += CHUNK;
          continue;
        }
        const n = chunk.copy(stage, fill, off, Math.min(chunk.length, off + CHUNK - fill));
        fill += n;
        off += n;
      }
      cb();
    },
    flush(cb) {
      seal(this, stage.subarray(0, fill), true);
      cb();
    },
  });
}

/** Encrypts a small value in memory (inventories): same format as the stream. */
export async function encryptBuffer(recipients: readonly string[], data: Buffer | string): Promise<Buffer> {
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return Buffer.from(await e.encrypt(typeof data === "string" ? new TextEncoder().encode(data) : data));
}

/** Reads identities (AGE-SECRET-KEY-…) from the text of an identity file, skipping comments and blank lines. */
export function parseIdentities(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

async function unwrapKey(
  identities: readonly string[],
  header: Buffer,
  object: string,
  recipients?: readonly string[],
): Promise<Uint8Array> {
  const d = new Decrypter();
  try {
    for (const id of identities) d.addIdentity(id);
  } catch (err) {
    throw new LifeboatError(code.crypto, `the identity file holds no valid age identity (${messageOf(err)})`, {
      hint: "pass the file written by `lifeboat keygen` or `age-keygen` (lines starting AGE-SECRET-KEY-)",
    });
  }
  try {
    return await d.decryptHeader(header);
  } catch (err) {
    const msg = messageOf(err);
    if (/no identity matched/i.test(msg)) {
      // The object was encrypted to the manifest's recipients: if one of the identities is for one of them, the key
      // is right and the header is what is damaged.
      if (recipients && (await ownsOneOf(identities, recipients))) {
        throw new IntegrityError(
          `${object}: the age header is damaged (the identity is for a recipient the manifest lists, yet no stanza opens with it)`,
          {
            cause: err,
          },
        );
      }
      throw new LifeboatError(code.crypto, `${object}: none of the given identities can decrypt it (wrong key?)`, {
        cause: err,
        hint: "use the identity whose recipient (age1…) is in encryption.recipients when this snapshot was taken",
      });
    }
    throw new IntegrityError(`${object}: the age header is corrupted (${msg})`, { cause: err });
  }
}

/** Whether any identity's recipient is among the recipients. */
async function ownsOneOf(identities: readonly string[], recipients: readonly string[]): Promise<boolean> {
  for (const id of identities) {
    const mine = await identityToRecipient(id).catch(() => undefined);
    if (mine && recipients.includes(mine)) return true;
  }
  return false;
}

/**
 * A Transform that decrypts an age file with the identities. Errors name the object: a wrong key is a CRYPTO error,
 * a flipped bit or a truncated file an IntegrityError.
 */
export function createDecryptStream(identities: readonly string[], object: string, recipients?: readonly string[]): Transform {
  let head: Buffer[] = [];
  let headLen = 0;
  let key: Buffer | undefined;
  let buf: Buffer = Buffer.alloc(0);
  let counter = 0;
  const SEALED = CHUNK + TAG;

  const open = (t: Transform, sealed: Buffer, last: boolean) => {
    try {
      if (last && sealed.length === TAG && counter > 0) throw new Error("empty last chunk");
      t.push(openChunk(key as Buffer, counter++, last, sealed));
    } catch (err) {
      throw new IntegrityError(`${object}: payload chunk ${counter} failed authentication (corrupted or truncated)`, { cause: err });
    }
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      (async () => {
        if (!key) {
          head.push(chunk);
          headLen += chunk.length;
          const all = Buffer.concat(head, headLen);
          const end = headerEnd(all);
          if (end < 0 || all.length < end + NONCE_PREFIX) {
            if (headLen > MAX_HEADER) throw new IntegrityError(`${object}: not an age file (no header found)`);
            head = [all];
            return;
          }
          if (!all.subarray(0, 21).toString("latin1").startsWith("age-encryption.org/v1")) {
            throw new IntegrityError(`${object}: not an age v1 file`);
          }
          const fileKey = await unwrapKey(identities, all.subarray(0, end), object, recipients);
          key = payloadKey(fileKey, all.subarray(end, end + NONCE_PREFIX));
          buf = all.subarray(end + NONCE_PREFIX);
          head = [];
        } else {
          buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        }
        // Keep at least one sealed chunk back: whether it is the last one is known only at the end of input.
        let off = 0;
        while (buf.length - off > SEALED) {
          open(this, buf.subarray(off, off + SEALED), false);
          off += SEALED;
        }
        buf = buf.subarray(off);
      })().then(() => cb(), cb);
    },
    flush(cb) {
      try {
        if (!key) throw new IntegrityError(`${object}: not an age file, or truncated inside its header`);
        if (buf.length < TAG) throw new IntegrityError(`${object}: truncated (the final chunk is missing)`);
        open(this, buf, true);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}
