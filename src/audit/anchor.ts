import fs from 'node:fs';
import path from 'node:path';
import { exportCheckpoint, parseExportedCheckpoint, type Checkpoint } from './checkpoint-format.js';

/**
 * The latest checkpoint, also kept in a file outside the database (docs/formats.md "Audit
 * checkpoints", anchor). Someone who can rewrite the database (a SQL account, a restored old
 * copy, a PostgreSQL administrator) but not this file cannot cut the trail back past it: `verify`
 * takes it as an exported checkpoint. Written atomically (temporary name, fsync, rename, fsync of
 * the directory); only ever moved forward.
 */
export function readAnchor(file: string): Checkpoint | undefined | 'unreadable' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return 'unreadable';
  }
  try {
    return parseExportedCheckpoint(JSON.parse(text)) ?? 'unreadable';
  } catch {
    return 'unreadable';
  }
}

export function writeAnchor(file: string, c: Checkpoint): void {
  const now = readAnchor(file);
  if (typeof now === 'object' && now.seq > c.seq) return;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(exportCheckpoint(c))}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}
