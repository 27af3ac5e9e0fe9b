/**
 * Where a value from outside may and may not begin a command argument: pipe(8) argv
 * templates (expandArgv) and shell commands of local(8) (optionLikeShellValue).
 */

import { describe, expect, it } from 'vitest';
import { optionLikeShellValue } from '../../../src/deliver/command-delivery.js';
import {
  type ArgvMessage,
  expandArgv,
  OptionLikeArgumentError,
  parsePipeFlags,
} from '../../../src/deliver/pipe-argv.js';

const settings = { flags: parsePipeFlags('', 'flags'), recipientDelimiter: '+' };
const message = (extra: Partial<ArgvMessage> = {}): ArgvMessage => ({
  sender: 'a@example.org',
  nexthop: 'example.net',
  size: 10,
  queueId: 'Q1',
  ...extra,
});
const rcpt = (address: string) => ({ address, originalAddress: address });

function refused(template: string[], m: ArgvMessage, to: string[]): string | undefined {
  try {
    expandArgv(template, m, to.map(rcpt), settings);
    return undefined;
  } catch (err) {
    if (err instanceof OptionLikeArgumentError) return err.macro;
    throw err;
  }
}

describe('expandArgv and option-like values', () => {
  it.each([
    // [template, message overrides, recipients, refused macro or undefined]
    [['/bin/x', '${sender}'], { sender: '-oQ/x@example.org' }, ['b@example.net'], 'sender'],
    [['/bin/x', '-f${sender}'], { sender: '-oQ/x@example.org' }, ['b@example.net'], undefined],
    [['/bin/x', '--', '${sender}'], { sender: '-oQ/x@example.org' }, ['b@example.net'], undefined],
    [['/bin/x', '${recipient}'], {}, ['-b@example.net'], 'recipient'],
    [['/bin/x', '${user}'], {}, ['-b+x@example.net'], 'user'],
    [['/bin/x', '${extension}'], {}, ['b+-x@example.net'], 'extension'],
    [['/bin/x', '${mailbox}'], {}, ['-b@example.net'], 'mailbox'],
    [['/bin/x', '${client_helo}'], { clientHelo: '-evil' }, ['b@example.net'], 'client_helo'],
    [['/bin/x', '${envid}'], { envid: '-id' }, ['b@example.net'], 'envid'],
    [['/bin/x', '${sasl_username}'], { saslUsername: '-u' }, ['b@example.net'], 'sasl_username'],
    // An empty value before it does not hide the one that starts the argument.
    [['/bin/x', '${envid}${sender}'], { sender: '-s@example.org' }, ['b@example.net'], 'sender'],
    // `$$` is literal text.
    [['/bin/x', '$$${sender}'], { sender: '-s@example.org' }, ['b@example.net'], undefined],
    // Values the mail system makes are not refused.
    [['/bin/x', '${size}', '${queue_id}'], {}, ['b@example.net'], undefined],
    [['/bin/x', '${sender}'], { sender: '' }, ['b@example.net'], undefined],
  ] as const)('%j with %j to %j → %s', (template, extra, to, macro) => {
    expect(refused([...template], message(extra), [...to])).toBe(macro);
  });

  it('names the recipient whose value it was', () => {
    const to = [rcpt('ok@example.net'), rcpt('-bad@example.net')];
    try {
      expandArgv(['/bin/x', '${recipient}'], message(), to, settings);
      expect.unreachable();
    } catch (err) {
      expect((err as OptionLikeArgumentError).recipient).toBe(to[1]);
      expect((err as Error).message).toBe(
        '${recipient} would start argument 1 of /bin/x with "-" (-bad@example.net), which the command could take for an option; put a "--" element before it in argv',
      );
    }
  });
});

describe('optionLikeShellValue', () => {
  const env = { SENDER: '-s@example.org', EXTENSION: '-x', RECIPIENT: 'r@example.net' };
  it.each([
    ['procmail -a "$EXTENSION"', 'EXTENSION'],
    ["procmail -a '${EXTENSION}'", 'EXTENSION'],
    ['/usr/bin/x $SENDER', 'SENDER'],
    ['true;$SENDER', 'SENDER'],
    ['/usr/bin/x --ext=$EXTENSION', undefined],
    ['/usr/bin/x $RECIPIENT', undefined],
    ['/usr/bin/x $HOME', undefined],
  ])('%s → %s', (text, name) => {
    expect(optionLikeShellValue(['/bin/sh', '-c', text], env)?.name).toBe(name);
  });

  it('looks at nothing when no shell runs the command', () => {
    expect(optionLikeShellValue(['/usr/bin/x', '$SENDER'], env)).toBeUndefined();
  });
});
