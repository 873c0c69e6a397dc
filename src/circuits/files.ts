/** Durable, atomic file writes: every export goes through these, so a crash leaves the old file or none. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../models/errors';

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

/**
 * Refuses an output path that cannot take a file: an existing directory, a missing parent
 * folder. Commands call it before they start work, so a long run does not end in an error.
 */
export function checkOutputFile(destination: string): string {
  const target = path.resolve(destination);
  let stat: fs.Stats | null = null;
  try {
    stat = fs.statSync(target);
  } catch {
    /* does not exist yet: fine */
  }
  if (stat && !stat.isFile()) throw new InputError('the output path exists and is not a regular file (a directory?): name a file', target);
  const parent = path.dirname(target);
  if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory()) throw new InputError('the output folder does not exist', parent);
  return target;
}

/** A temp file beside the destination, fsync, rename. */
export function writeFileAtomic(destination: string, content: string | Uint8Array): void {
  const target = checkOutputFile(destination);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    writeSynced(temp, content);
    fs.renameSync(temp, target);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}
