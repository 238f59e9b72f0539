import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../../test/helpers/age.ts";
import { code } from "../errors.ts";
import { createDecryptStream, createEncryptStream, encryptBuffer } from "./age.ts";

async function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(Buffer.from(c as Buffer));
  return Buffer.concat(out);
}

async function encrypt(recipient: string, data: Buffer, piece = 10_000): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) pieces.push(data.subarray(i, i + piece));
  return collect(Readable.from(pieces).pipe(await createEncryptStream([recipient])));
}

async function decrypt(identity: string, data: Buffer, piece = 7_777): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) pieces.push(data.subarray(i, i + piece));
  const d = createDecryptStream([identity], "test.age");
  return collect(Readable.from(pieces).pipe(d));
}

describe("age stream", () => {
  let key: Awaited<ReturnType<typeof makeKey>>;
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-age-"));
  beforeAll(async () => {
    key = await makeKey();
  });

  for (const size of [0, 1, 65535, 65536, 65537, 3 * 65536, 200_000]) {
    it(`round-trips ${size} bytes and the stock age CLI agrees`, async () => {
      const data = randomBytes(size);
      const sealed = await encrypt(key.recipient, data);
      expect((await decrypt(key.identity, sealed)).equals(data)).toBe(true);
      const file = join(dir, `f${size}.age`);
      writeFileSync(file, sealed);
      const plain = execFileSync("age", ["-d", "-i", key.identityFile, file], { maxBuffer: 1 << 30 });
      expect(plain.equals(data)).toBe(true);
      // And the other way round: what the CLI writes, we read.
      writeFileSync(join(dir, "p"), data);
      execFileSync("age", ["-r", key.recipient, "-o", join(dir, "c.age"), join(dir, "p")]);
      expect((await decrypt(key.identity, readFileSync(join(dir, "c.age")))).equals(data)).toBe(true);
    });
  }

  it("fails with an integrity error naming the object when one bit flips", async () => {
    const sealed = await encrypt(key.recipient, randomBytes(300_000));
    for (const at of [sealed.length - 5, 2000, 70_000]) {
      const bad = Buffer.from(sealed);
      bad[at] = (bad[at] as number) ^ 1;
      await expect(decrypt(key.identity, bad)).rejects.toMatchObject({
        code: code.integrity,
        message: expect.stringContaining("test.age"),
      });
    }
  });

  it("detects truncation at a chunk boundary", async () => {
    const sealed = await encrypt(key.recipient, randomBytes(4 * 65536));
    const headerAndNonce = sealed.length - 4 * (65536 + 16);
    const cut = sealed.subarray(0, headerAndNonce + 2 * (65536 + 16));
    await expect(decrypt(key.identity, cut)).rejects.toMatchObject({ code: code.integrity });
  });

  it("rejects a wrong identity with a crypto error", async () => {
    const other = await makeKey();
    const sealed = await encryptBuffer([key.recipient], "secret");
    await expect(decrypt(other.identity, sealed)).rejects.toMatchObject({ code: code.crypto, message: expect.stringMatching(/wrong key/) });
  });

  it("rejects data that is not age", async () => {
    await expect(decrypt(key.identity, Buffer.from("hello world, plain text"))).rejects.toMatchObject({ code: code.integrity });
  });

  it("calls a damaged header damage, not a wrong key, when the identity is for one of the manifest's recipients", async () => {
    const a = await makeKey();
    const b = await makeKey();
    const sealed = await encrypt(a.recipient, randomBytes(1000));
    // Inside the X25519 stanza's line: "-> X25519 <share>".
    const at = sealed.indexOf("-> X25519 ") + 20;
    const damaged = Buffer.from(sealed);
    damaged.writeUInt8(damaged.readUInt8(at) === 0x41 ? 0x42 : 0x41, at);
    const open = (identity: string, recipients?: string[]) =>
      collect(Readable.from([damaged]).pipe(createDecryptStream([identity], "x.age", recipients))).catch((e: unknown) => e);
    expect(await open(a.identity, [a.recipient])).toMatchObject({
      code: code.integrity,
      message: expect.stringMatching(/x\.age: the age header is damaged/),
    });
    // Without the manifest's word, or with another key, it stays "wrong key?".
    expect(await open(a.identity)).toMatchObject({ code: code.crypto });
    expect(await open(b.identity, [a.recipient])).toMatchObject({ code: code.crypto, message: expect.stringMatching(/wrong key\?/) });
  });
});
