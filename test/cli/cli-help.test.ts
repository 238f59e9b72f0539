import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";

const bin = fileURLToPath(new URL("../../bin/lifeboat.js", import.meta.url));

/** Runs bin/lifeboat.js as if under another Node version (process.versions is configurable, so a preload can lie). */
function runAsNode(version: string) {
  const preload = `Object.defineProperty(process.versions, "node", { value: "${version}" }); Object.defineProperty(process, "version", { value: "v${version}" });`;
  return spawnSync(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(preload)}`, bin, "--version"], {
    encoding: "utf8",
    timeout: 60_000,
  });
}

describe("the Node.js version check", () => {
  it("agrees with package.json's engines: 22.15 (23.5 on the 23 line) is the first release with module.registerHooks", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { engines: { node: string } };
    expect(pkg.engines.node).toBe("^22.15.0 || >=23.5.0");
    const old = runAsNode("22.14.0");
    expect(old.status).toBe(2);
    expect(old.stderr).toContain("lifeboat needs Node.js 22.15 or newer (23.5 or newer on the 23 line); this is v22.14.0.");
    expect(runAsNode("20.19.0").status).toBe(2);
    expect(runAsNode("23.4.0").status).toBe(2);
    const ok = runAsNode("22.15.0");
    expect(ok.status, ok.stderr).toBe(0);
  });
});

describe("help texts", () => {
  it("say what the arguments really are", async () => {
    const restore = await runCli(["restore", "--help"]);
    expect(restore.stdout.replace(/\s+/g, " ")).toContain(
      "where to restore: a database URL (postgres://…, mysql://…), a file path (SQLite jobs) or a directory (volume jobs)",
    );
    const backup = await runCli(["backup", "--help"]);
    expect(backup.stdout.replace(/\s+/g, " ")).toContain("job name (the name field of a job in jobs/, not its file name)");
  });
});
