// The embedded S3 server in a process of its own, so its event loop is neither the benchmark's nor lifeboat's and
// its CPU time can be told apart. Usage: node --import tsx bench/s3-server.ts <directory> <bucket>
// Prints one JSON line {"endpoint": "..."} when the bucket exists; stops when stdin closes or on SIGTERM/SIGINT.
import { createBucket, startEmbeddedS3 } from "../src/storage/embedded-s3.ts";

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) {
  process.stderr.write("usage: s3-server.ts <directory> <bucket>\n");
  process.exit(2);
}
const s3 = await startEmbeddedS3({ directory });
await createBucket(s3.endpoint, bucket);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  s3.stop().finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The parent holds our stdin: when it exits, however it exits, the server goes too.
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ endpoint: s3.endpoint })}\n`);
