import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";

/** A fresh age key pair with the identity written to a 0600 file, as `lifeboat keygen` would. */
export async function makeKey(): Promise<{ identity: string; recipient: string; identityFile: string }> {
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-key-"));
  const identityFile = join(dir, "identity.txt");
  writeFileSync(identityFile, `# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });
  chmodSync(identityFile, 0o600);
  return { identity, recipient, identityFile };
}
