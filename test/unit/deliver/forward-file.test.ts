import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  readForwardFile,
  readIncludeFile,
  TargetFileError,
} from '../../../src/deliver/forward-file.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-forward-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('.forward and :include: files', () => {
  it('refuses a FIFO without waiting for a writer', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const ignored: string[] = [];
    expect(await readForwardFile(fifo, undefined, (why) => ignored.push(why))).toBeUndefined();
    expect(ignored).toEqual([`${fifo} is not a regular file; ignored`]);
    await expect(readIncludeFile(fifo)).rejects.toThrow(TargetFileError);
  });

  it('ignores a symbolic link, and reads a regular file through the reader it is given', async () => {
    const real = path.join(dir, 'real');
    await fs.writeFile(real, 'alice\n', { mode: 0o644 });
    const link = path.join(dir, 'link');
    await fs.symlink(real, link);
    const ignored: string[] = [];
    expect(await readForwardFile(link, undefined, (why) => ignored.push(why))).toBeUndefined();
    expect(ignored).toEqual([`${link} is a symbolic link; ignored`]);
    const seen: string[] = [];
    const text = await readForwardFile(real, undefined, undefined, async (file) => {
      seen.push(file);
      return { uid: 0, mode: 0o100644, nlink: 1, size: 4, regular: true, text: 'bob\n' };
    });
    expect([text, seen]).toEqual(['bob\n', [real]]);
  });
});
