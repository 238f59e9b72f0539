import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import { code } from "../../src/errors.ts";
import { checkVolumeDevices, deviceOf, findDeviceViolations, formatDevice } from "../../src/safety/device.ts";
import { makeKey } from "../helpers/age.ts";
import { writeProject } from "../helpers/project.ts";

const key = await makeKey();
const temps: string[] = [];
function temp(base = tmpdir()): string {
  const d = mkdtempSync(join(base, "lifeboat-device-"));
  temps.push(d);
  return d;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

const volumeJob = (name: string, path: string, targets = ["nas"]) => ({
  name,
  source: { type: "volume", path },
  targets,
});

// A directory on another device than tmpdir, if this machine has one (tmpfs at /dev/shm usually is).
function otherDevice(): string | undefined {
  const here = statSync(tmpdir()).dev;
  for (const candidate of ["/dev/shm", "/run", "/var/tmp"]) {
    try {
      if (statSync(candidate).dev !== here) return temp(candidate);
    } catch {}
  }
  return undefined;
}

describe("the volume device rule", () => {
  it("refuses a filesystem target on the volume's device, reading a missing target's nearest existing ancestor", () => {
    const volume = temp();
    const storage = temp();
    const targetPath = join(storage, "not", "yet", "created");
    const violations = findDeviceViolations([volumeJob("uploads", volume)], { nas: { type: "filesystem", path: targetPath } });
    const device = formatDevice(statSync(volume, { bigint: true }).dev);
    expect(violations).toEqual([
      { job: "uploads", target: "nas", targetPath, sourcePath: volume, why: "same-device", device, statted: storage, file: undefined },
    ]);
    expect(() => checkVolumeDevices([volumeJob("uploads", volume)], { nas: { type: "filesystem", path: targetPath } })).toThrow(
      expect.objectContaining({
        code: code.config,
        message: expect.stringContaining(
          `job "uploads" ships volume ${volume} to target "nas" (${targetPath}), which is on the same device ${device} (read from ${storage}`,
        ),
        hint: expect.stringMatching(/another device or host/),
      }),
    );
  });

  it("refuses a target inside the volume, or holding it, whatever the device", () => {
    const volume = temp();
    const inside = join(volume, "backups");
    const nested = findDeviceViolations([volumeJob("uploads", volume, ["a", "b"])], {
      a: { type: "filesystem", path: inside },
      b: { type: "filesystem", path: join(volume, "..") },
    });
    expect(nested.map((v) => [v.target, v.why])).toEqual([
      ["a", "nested"],
      ["b", "nested"],
    ]);
  });

  it("accepts a target on another device, other sources, S3 targets and volumes missing on this host", () => {
    const volume = temp();
    const elsewhere = otherDevice();
    if (elsewhere) {
      expect(findDeviceViolations([volumeJob("uploads", volume)], { nas: { type: "filesystem", path: join(elsewhere, "x") } })).toEqual([]);
    }
    const local = { type: "filesystem", path: join(temp(), "t") };
    expect(findDeviceViolations([{ name: "db", source: { type: "postgres" }, targets: ["nas"] }], { nas: local })).toEqual([]);
    expect(findDeviceViolations([volumeJob("uploads", volume, ["s3"])], { s3: { type: "s3" } })).toEqual([]);
    expect(findDeviceViolations([volumeJob("uploads", "/nonexistent/volume")], { nas: local })).toEqual([]);
  });

  it("reads the device of a path that does not exist from its nearest existing ancestor", () => {
    const base = temp();
    mkdirSync(join(base, "a"));
    const d = deviceOf(join(base, "a", "b", "c"));
    expect(d.statted).toBe(join(base, "a"));
    expect(d.dev).toBe(statSync(base, { bigint: true }).dev);
  });

  it("makes loadConfig fail with a config error even when the boundary labels differ", async () => {
    const volume = temp();
    const storage = join(temp(), "lifeboat");
    const p = writeProject({
      "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] },
  targets: { nas: { type: "filesystem", path: ${JSON.stringify(storage)}, boundary: "office-nas" } } });`,
      "jobs/uploads.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "uploads", source: { type: "volume", path: ${JSON.stringify(volume)}, boundary: "app-host" }, targets: ["nas"] });`,
    });
    const err = await loadConfig(p.config).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: code.config });
    expect((err as Error).message).toMatch(
      /jobs\/uploads\.ts: targets: job "uploads" ships volume .* to target "nas" .* same device \d+:\d+/,
    );
  });
});
