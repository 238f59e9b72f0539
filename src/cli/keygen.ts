import { lstatSync } from "node:fs";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { Command } from "commander";
import { RefusedError } from "../errors.ts";
import { checkOutputFolder, writeOutputFile } from "./out-file.ts";
import { globals, print } from "./output.ts";

/** Overwriting an identity makes every backup encrypted to it unreadable; a symlink could point at one. */
function refuseExisting(out: string): RefusedError {
  const link = lstatSync(out, { throwIfNoEntry: false })?.isSymbolicLink() ? " (a symlink)" : "";
  return new RefusedError(`${out} already exists${link}; refusing to overwrite an identity`, {
    hint: "choose another --out path; keep the old identity as long as backups encrypted to it exist",
  });
}

/** `lifeboat keygen [--out FILE]`: makes an age identity (mode 0600) and prints its recipient. */
export const keygenCommand = (): Command =>
  new Command("keygen")
    .description("generate an age identity file (mode 0600) and print its recipient (public key)")
    .option("--out <file>", "write the identity here instead of standard output")
    .action(async (opts: { out?: string }, cmd: Command) => {
      const g = globals(cmd);
      const out = opts.out;
      if (out !== undefined) {
        // lstat, not exists: a dangling symlink is still something the write would go through.
        if (lstatSync(out, { throwIfNoEntry: false })) throw refuseExisting(out);
        checkOutputFolder(out, "--out");
      }
      const identity = await generateIdentity();
      const recipient = await identityToRecipient(identity);
      const text = `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`;
      if (out !== undefined) {
        writeOutputFile(out, text, "--out", { mode: 0o600, exclusive: true, onExists: () => refuseExisting(out) });
        print(g.json, { recipient, identityFile: out }, () =>
          [
            `wrote identity to ${out} (mode 0600)`,
            `recipient: ${recipient}`,
            "put the recipient in backup.config.ts (encryption.recipients); keep the identity file off the backup host",
          ].join("\n"),
        );
      } else if (g.json) {
        print(true, { recipient, identity }, () => "");
      } else {
        process.stdout.write(text);
        process.stderr.write(`Public key: ${recipient}\n`);
      }
    });
