import { spawnSync } from "node:child_process";
import type { Duplex } from "node:stream";
import { constants, createZstdCompress, createZstdDecompress } from "node:zlib";
import { spawnFilter } from "./child.ts";

let cliAvailable: boolean | undefined;

/** Whether the zstd program is installed; it is about twice as fast as Node's single-threaded zstd. */
function useCli(): boolean {
  const pref = process.env.LIFEBOAT_ZSTD;
  if (pref === "node") return false;
  if (cliAvailable === undefined) cliAvailable = spawnSync("zstd", ["--version"], { stdio: "ignore" }).status === 0;
  return cliAvailable;
}

/** A zstd compressor stream (standard zstd frames: `zstd -d` reads them). */
export function createCompressStream(level: number): Duplex {
  if (useCli()) return spawnFilter("zstd", [`-${level}`, "-T2", "-q", "-c"], "compress (zstd)");
  return createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: level } });
}

/** A zstd decompressor stream. */
export function createDecompressStream(): Duplex {
  if (useCli()) return spawnFilter("zstd", ["-d", "-q", "-c"], "decompress (zstd)");
  return createZstdDecompress();
}
