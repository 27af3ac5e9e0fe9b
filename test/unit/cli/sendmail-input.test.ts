import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { parseSendmailArgs } from '../../../src/cli/sendmail.js';
import { SendmailInput } from '../../../src/cli/sendmail-input.js';

async function through(input: string, dotEnds: boolean, split = 0): Promise<string> {
  const chunks = split > 0 ? [input.slice(0, split), input.slice(split)] : [input];
  return text(
    Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new SendmailInput(dotEnds)),
  );
}

describe('sendmail input (sendmail(1) reading rules)', () => {
  it.each([
    ['a line with only a dot ends the message', 'a\n.\nafter\n', true, 'a\n'],
    ['CRLF becomes LF', 'a\r\nb\r\n', true, 'a\nb\n'],
    ['a dot line with CRLF ends it too', 'a\r\n.\r\nafter', true, 'a\n'],
    ['dots are not unstuffed', '..x\n.y\n', true, '..x\n.y\n'],
    ['-i: the dot line is content', 'a\n.\nb\n', false, 'a\n.\nb\n'],
    ['a lone dot at the very end without newline is content', 'a\n.', true, 'a\n.'],
    ['a dot line first ends at once', '.\nrest\n', true, ''],
    ['a bare CR stays', 'a\rb\n', true, 'a\rb\n'],
  ])('%s', async (_name, input, dotEnds, expected) => {
    expect(await through(input, dotEnds)).toBe(expected);
    for (let i = 1; i < input.length; i++) expect(await through(input, dotEnds, i)).toBe(expected);
  });
});

describe('sendmail arguments', () => {
  it('takes values attached or separate, and recipients anywhere', () => {
    const o = parseSendmailArgs([
      '-oi',
      '-fme@example.org',
      'a@x.test',
      '-F',
      'Me Myself',
      '-N',
      'success,delay',
      '-R',
      'hdrs',
      '-V',
      'env1',
      '--',
      '-odd@x.test',
    ]);
    expect(o).toMatchObject({
      dotEnds: false,
      sender: 'me@example.org',
      fullName: 'Me Myself',
      notify: ['SUCCESS', 'DELAY'],
      ret: 'HDRS',
      envid: 'env1',
      recipients: ['a@x.test', '-odd@x.test'],
    });
  });

  it.each([[['-N', 'never,success']], [['-R', 'some']], [['-f']], [['-Z']], [['-bx']]])(
    'refuses %j',
    (args) => {
      expect(() => parseSendmailArgs(args)).toThrow();
    },
  );

  it('knows the modes', () => {
    expect(parseSendmailArgs(['-bp']).mode).toBe('list');
    expect(parseSendmailArgs(['-q']).mode).toBe('flush');
    expect(parseSendmailArgs(['-t']).extract).toBe(true);
    expect(parseSendmailArgs(['-C', 'x.json']).config).toBe('x.json');
    expect(parseSendmailArgs(['--config', 'y.json']).config).toBe('y.json');
  });
});
