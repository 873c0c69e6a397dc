/** Atomic writes: a temp file beside the destination, fsync, rename. A crash leaves the old file or none. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function writeFileAtomic(destination: string, content: string | Uint8Array): void {
  const target = path.resolve(destination);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  const fd = fs.openSync(temp, 'w');
  try {
    fs.writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(temp, target);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}
