// An example configuration: copy it next to your jobs/ and restore-drills/ and adapt it.
// Values come from the environment so the same files work on every host; nothing secret is written here.
import { defineConfig } from "lifeboat";

export default defineConfig({
  // Public keys only (age1…): `lifeboat keygen --out identity.txt` prints one. The identity stays off this host.
  encryption: { recipients: (process.env.LIFEBOAT_RECIPIENTS ?? "").split(",").filter(Boolean) },
  targets: {
    offsite: {
      type: "s3",
      bucket: process.env.S3_BUCKET ?? "acme-backups",
      region: process.env.S3_REGION ?? "eu-central-1",
      prefix: "prod",
      endpoint: process.env.S3_ENDPOINT,
      forcePathStyle: Boolean(process.env.S3_ENDPOINT),
      boundary: "aws:eu-central-1",
    },
  },
  // Drills restore into fresh, randomly named databases here: never the source server if you can help it.
  scratch: { postgres: process.env.SCRATCH_PG_URL, directory: process.env.SCRATCH_DIR ?? "/var/tmp/lifeboat-scratch" },
});
