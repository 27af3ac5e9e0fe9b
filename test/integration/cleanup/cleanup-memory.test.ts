/**
 * Issue 5 acceptance 3: header and body checks on a 50 MB message keep resident memory
 * growth under 32 MB. The message streams through Cleanup into a FileQueueStore in a
 * temporary directory (a MemoryQueueStore would keep the content in RAM), with 100
 * header_checks patterns and body_checks configured.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Cleanup } from '../../../src/cleanup/cleanup.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { FileQueueStore } from '../../../src/queue/stores/file-store.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';

const MB = 1024 * 1024;
const dirs: string[] = [];

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function headerChecks(n: number): string {
  const rules: string[] = [];
  for (let i = 0; i < n; i++) rules.push(`{/^X-Spam-Rule-${i}: .*bad${i}/ REJECT rule ${i}}`);
  rules.push('{/^Subject: .*cheap pills/ REJECT}');
  return `regexp:{ ${rules.join(', ')} }`;
}

/** A 50 MB multipart message: a text part, a base64 attachment, a forwarded message. */
async function* bigMessage(total: number): AsyncGenerator<Buffer> {
  yield Buffer.from(
    [
      'From: alice@example.org',
      'To: bob@example.com',
      'Subject: quarterly numbers',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="=_b1"',
      '',
      '--=_b1',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Grüße, the numbers are attached.',
      '--=_b1',
      'Content-Type: application/octet-stream; name="data.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      '',
    ].join('\r\n'),
  );
  const line = `${'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx'.slice(0, 76)}\r\n`;
  const chunk = Buffer.from(line.repeat(Math.floor((64 * 1024) / line.length)));
  for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
  yield Buffer.from(
    '--=_b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--=_b1--\r\n',
  );
}

describe('Cleanup memory (acceptance 3)', () => {
  it('keeps RSS growth under 32 MB for a 50 MB message with header and body checks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-cleanup-mem-'));
    dirs.push(dir);
    const params = resolveParameters({
      myhostname: 'mx.example.com',
      headerChecks: headerChecks(100),
      bodyChecks:
        'regexp:{ {/^<iframe/ REJECT}, {/cheap pills/ REJECT}, {/^begin [0-7]{3} / WARN uuencoded} }',
      messageSizeLimit: 0,
    });
    const store = new FileQueueStore({ directory: dir });
    await store.open();
    const cleanup = new Cleanup({
      params,
      store,
      rewriter: new Rewriter({ params }),
      queueIds: new QueueIdGenerator('MEMT0'),
    });
    const submitOne = async (total: number, sample?: () => void) => {
      const tx = await cleanup.open({
        component: 'smtpd',
        protocol: 'ESMTP',
        client: { address: '192.0.2.1' },
      });
      tx.setSender('alice@example.org');
      tx.addRecipient({ address: 'bob@example.com' });
      let n = 0;
      async function* sampled(): AsyncGenerator<Buffer> {
        for await (const c of bigMessage(total)) {
          if (sample && ++n % 16 === 0) sample();
          yield c;
        }
      }
      await pipeline(Readable.from(sampled()), tx.content);
      return tx.commit();
    };
    // Warm-up: code paths compiled, pools allocated.
    expect((await submitOne(2 * MB)).reply.code).toBe(250);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = (): void => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    const result = await submitOne(50 * MB, sample);
    sample();
    expect(result.reply.code).toBe(250);
    const growth = peak - before;
    console.log(`cleanup 50 MB with checks: RSS growth ${(growth / MB).toFixed(1)} MB`);
    expect(growth).toBeLessThan(32 * MB);
    await store.close();
  }, 120_000);
});
