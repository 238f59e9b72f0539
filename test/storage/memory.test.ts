import { describe, expect, it } from "vitest";
import { MemoryTarget } from "../../src/storage/memory.ts";
import { putBuffer } from "../../src/storage/target.ts";
import { describeTargetContract } from "../contracts/target.ts";

describeTargetContract("memory", async () => ({ target: new MemoryTarget("mem"), cleanup: async () => {} }));

describe("MemoryTarget", () => {
  it("applies the same key rules as the real backends", async () => {
    const target = new MemoryTarget("mem");
    await expect(putBuffer(target, "../x", "x")).rejects.toThrow(/target "mem": invalid key/);
  });
});

describe("storage registry", () => {
  it("creates built-in targets by type and refuses a duplicate kind", async () => {
    const { createTarget, registerTarget } = await import("../../src/storage/index.ts");
    const s3 = createTarget("offsite", {
      type: "s3",
      bucket: "acme",
      region: "us-east-1",
      prefix: "",
      forcePathStyle: false,
      partSizeMiB: 16,
      queueSize: 4,
      boundary: "aws",
      roles: {},
      requireImmutable: false,
    });
    expect([s3.name, s3.kind]).toEqual(["offsite", "s3"]);
    await s3.close?.();
    expect(createTarget("nas", { type: "filesystem", path: "/tmp", boundary: "nas" }).kind).toBe("filesystem");
    expect(() => registerTarget("s3", (name) => new MemoryTarget(name))).toThrow(/registered twice/);
    registerTarget("memory", (name) => new MemoryTarget(name));
    expect(() => registerTarget("memory", (name) => new MemoryTarget(name))).toThrow(/registered twice/);
  });
});
