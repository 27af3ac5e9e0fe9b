/**
 * Every error class Postern defines extends PosternError and carries a stable code
 * from PosternErrorCode: the classes in src/ are read for `extends Error`, and the
 * errors a caller can meet through the public entry are made and checked.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RightsError } from '../../src/deliver/delivery-rights.js';
import { TargetFileError } from '../../src/deliver/forward-file.js';
import { HelperError } from '../../src/deliver/mailbox-helper-pool.js';
import { ReplySyntaxError } from '../../src/deliver/smtp/reply-parser.js';
import { SessionError } from '../../src/deliver/smtp/session-error.js';
import { LockBusyError, MailboxPathError, MailboxRefusedError } from '../../src/exports/agents.js';
import { PosternError, type PosternErrorCode } from '../../src/index.js';
import { UnexpectedEndError } from '../../src/receive/byte-reader.js';
import { NetstringError } from '../../src/receive/netstring.js';
import { RuleSyntaxError } from '../../src/tables/pattern-rules.js';
import { NotRegularFileError } from '../../src/util/safe-open.js';

const SRC = resolve(import.meta.dirname, '../../src');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('the PosternError tree', () => {
  it('no class in src/ but PosternError itself extends Error', async () => {
    const found: string[] = [];
    for (const file of await sources(SRC)) {
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(/class (\w+) extends Error\b/g))
        found.push(`${relative(SRC, file)}: ${m[1]}`);
    }
    expect(found).toEqual(['errors.ts: PosternError']);
  });

  it.each<[string, () => Error, PosternErrorCode]>([
    ['LockBusyError', () => new LockBusyError('/var/mail/a', 3), 'POSTERN_ERR_LOCK_BUSY'],
    ['MailboxPathError', () => new MailboxPathError('bad path'), 'POSTERN_ERR_MAILBOX_PATH'],
    [
      'MailboxRefusedError',
      () => new MailboxRefusedError('5.2.2', 'mailbox full'),
      'POSTERN_ERR_MAILBOX_REFUSED',
    ],
    ['RightsError', () => new RightsError('no such user'), 'POSTERN_ERR_RIGHTS'],
    ['TargetFileError', () => new TargetFileError('not a file'), 'POSTERN_ERR_TARGET_FILE'],
    ['HelperError', () => new HelperError('helper died'), 'POSTERN_ERR_MAILBOX_HELPER'],
    ['ReplySyntaxError', () => new ReplySyntaxError('no code'), 'POSTERN_ERR_REPLY_SYNTAX'],
    ['SessionError', () => SessionError.timeout('mx.test', 'DATA'), 'POSTERN_ERR_SMTP_TIMEOUT'],
    ['UnexpectedEndError', () => new UnexpectedEndError('sender'), 'POSTERN_ERR_UNEXPECTED_END'],
    ['NetstringError', () => new NetstringError('size', 'message'), 'POSTERN_ERR_NETSTRING'],
    ['RuleSyntaxError', () => new RuleSyntaxError('bad line'), 'POSTERN_ERR_RULE_SYNTAX'],
    [
      'NotRegularFileError',
      () => new NotRegularFileError('/tmp/x', 'directory'),
      'POSTERN_ERR_NOT_REGULAR',
    ],
  ])('%s is a PosternError with its code', (name, make, code) => {
    const err = make();
    expect(PosternError.is(err)).toBe(true);
    expect(err).toBeInstanceOf(PosternError);
    expect((err as PosternError).code).toBe(code);
    expect(err.name).toBe(name);
  });
});
