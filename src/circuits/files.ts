/** Durable, atomic file writes: every export goes through these, so a crash leaves the old file or none. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes and fsyncs `file` (no rename: callers write into a temp location first). */
export function writeSynced(file: string, data: Buffer | Uint8Array | string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A temp file beside the destination, fsync, rename. */
export function writeFileAtomic(destination: string, content: string | Uint8Array): void {
  const target = path.resolve(destination);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    writeSynced(temp, content);
    fs.renameSync(temp, target);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}
