import { readFileSync } from "node:fs";

/** lifeboat's own version, recorded in every manifest and drill record. */
export const VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;
