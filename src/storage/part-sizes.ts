/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;
/** S3's limit on the size of one part. */
export const MAX_PART_BYTES = 5 * 1024 ** 3;
/**
 * An upload doubles its part size once it has sent this many parts' worth of the current size. The length of a
 * stream is not known in advance, so a fixed part size either wastes memory on small objects or caps big ones at
 * 10,000 parts. Doubling keeps a typical dump at the configured size, and lets any size first part (5 MiB and up)
 * reach S3's 5 TiB object limit in under 9,000 parts: 1,500 parts at the first size, then 750 per doubling.
 */
export const GROWTH_PARTS = 1_500;

/**
 * The size of the next part of an upload whose parts so far are `current` bytes long and total `sent` bytes.
 * Only ever doubles, so a buffer of the current size can be reused until the next step, and never past
 * MAX_PART_BYTES.
 */
export function nextPartSize(current: number, sent: number, growthParts = GROWTH_PARTS): number {
  let size = current;
  while (sent >= growthParts * size && size * 2 <= MAX_PART_BYTES) size *= 2;
  return size;
}
