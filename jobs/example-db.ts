import { defineJob } from "lifeboat";

export default defineJob({
  name: "example-db",
  source: {
    type: "postgres",
    url: process.env.EXAMPLE_DB_URL ?? "postgres://postgres@127.0.0.1:5432/lifeboat_demo",
    boundary: "local-postgres",
  },
  targets: ["offsite"],
  schedule: "0 */6 * * *",
  rpo: "6h",
});
