/**
 * Postfix's smtp-source as a load generator for cluster tests: `messages` messages
 * over `sessions` connections (reused, -d), each with a recipient of its own (-N:
 * `<seq>rcpt@<domain>`, seq from 1), so a sink can tell every message apart. It exits
 * non-zero if any message is not acknowledged, so a resolved run means every message
 * got a 250.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SmtpSourceLoad {
  readonly port: number;
  readonly messages: number;
  readonly sessions: number;
  /** Recipients are `<seq>rcpt@<domain>`. */
  readonly domain: string;
  /** Body size in bytes. @default 1000 */
  readonly size?: number;
}

/** Runs smtp-source against 127.0.0.1:`port`; resolves when every message got its 250. */
export async function smtpSource(load: SmtpSourceLoad): Promise<void> {
  await run(
    'smtp-source',
    [
      '-s',
      String(load.sessions),
      '-m',
      String(load.messages),
      '-d',
      '-N',
      '-l',
      String(load.size ?? 1000),
      '-f',
      'load@client.example',
      '-t',
      `rcpt@${load.domain}`,
      `127.0.0.1:${load.port}`,
    ],
    { timeout: 240_000 },
  );
}

/** The recipients smtp-source -N uses for `messages` messages to `domain`. */
export function smtpSourceRecipients(domain: string, messages: number): string[] {
  return Array.from({ length: messages }, (_, i) => `${i + 1}rcpt@${domain}`);
}
