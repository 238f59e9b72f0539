import { existsSync, writeFileSync } from "node:fs";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { Command } from "commander";
import { RefusedError } from "../errors.ts";
import { globals, print } from "./output.ts";

/** `lifeboat keygen [--out FILE]`: makes an age identity (mode 0600) and prints its recipient. */
export const keygenCommand = (): Command =>
  new Command("keygen")
    .description("generate an age identity file (mode 0600) and print its recipient (public key)")
    .option("--out <file>", "write the identity here instead of standard output")
    .action(async (opts: { out?: string }, cmd: Command) => {
      const g = globals(cmd);
      const identity = await generateIdentity();
      const recipient = await identityToRecipient(identity);
      const text = `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`;
      if (opts.out) {
        if (existsSync(opts.out)) {
          // Overwriting an identity makes every backup encrypted to it unreadable.
          throw new RefusedError(`${opts.out} already exists; refusing to overwrite an identity`, {
            hint: "choose another --out path; keep the old identity as long as backups encrypted to it exist",
          });
        }
        writeFileSync(opts.out, text, { mode: 0o600, flag: "wx" });
        print(g.json, { recipient, identityFile: opts.out }, () =>
          [
            `wrote identity to ${opts.out} (mode 0600)`,
            `recipient: ${recipient}`,
            "put the recipient in backup.config.ts (encryption.recipients); keep the identity file off the backup host",
          ].join("\n"),
        );
      } else {
        process.stdout.write(g.json ? `${JSON.stringify({ recipient, identity })}\n` : text);
        if (!g.json) process.stderr.write(`Public key: ${recipient}\n`);
      }
    });
