/** The content-filter hook: verdicts, ownership of the stream, and backpressure. */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Cleanup } from '../../../src/cleanup/cleanup.js';
import type { ContentFilter } from '../../../src/cleanup/content-filter.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { FileQueueStore } from '../../../src/queue/stores/file-store.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import type { QueueStore } from '../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { SmtpReply } from '../../../src/smtp-reply.js';
import { incoming, only, REMOTE, readAll } from './harness.js';

const CONTENT = 'From: alice@example.org\r\nSubject: hello\r\n\r\nline one\r\nline two\r\n';

async function setup(filter: ContentFilter, store: QueueStore = new MemoryQueueStore()) {
  const params = resolveParameters({ myhostname: 'mx.example.com' });
  await store.open();
  const cleanup = new Cleanup({
    params,
    store,
    rewriter: new Rewriter({ params }),
    queueIds: new QueueIdGenerator('FILT0'),
    contentFilter: filter,
  });
  return { store, cleanup };
}

async function send(cleanup: Cleanup, content: string | Buffer = CONTENT) {
  const tx = await cleanup.open(REMOTE);
  tx.setSender('alice@example.org');
  tx.addRecipient({ address: 'bob@example.com' });
  await pipeline(Readable.from([Buffer.from(content)]), tx.content);
  return tx.commit();
}

describe('content filter hook', () => {
  it('sees the message after header processing and the envelope', async () => {
    let seen = '';
    let envelope: Parameters<ContentFilter>[0] | undefined;
    const { cleanup, store } = await setup(async (env, message) => {
      envelope = env;
      seen = await readAll(message);
      return { action: 'accept' };
    });
    const result = await send(cleanup);
    expect(result.reply.code).toBe(250);
    const { content } = await only(store);
    expect(seen).toBe(content);
    expect(seen.startsWith('Received: from helo.example.net')).toBe(true);
    expect(envelope?.sender).toBe('alice@example.org');
    expect(envelope?.recipients).toEqual(['bob@example.com']);
  });

  it.each([
    ['reject', { action: 'reject', reply: new SmtpReply(554, '5.7.1', 'virus found') }, 554],
    ['reject 4xx', { action: 'reject', reply: new SmtpReply(451, '4.7.1', 'scanner busy') }, 451],
    ['defer', { action: 'defer' }, 451],
    ['discard', { action: 'discard', reason: 'spam' }, 250],
  ] as const)('%s', async (_name, verdict, code) => {
    const { cleanup, store } = await setup(async (_env, message) => {
      await readAll(message);
      return verdict;
    });
    const result = await send(cleanup);
    expect(result.reply.code).toBe(code);
    expect(await incoming(store)).toEqual([]);
  });

  it('hold puts the message in the hold queue', async () => {
    const { cleanup, store } = await setup(async (_env, message) => {
      await readAll(message);
      return { action: 'hold', reason: 'quarantine' };
    });
    expect((await send(cleanup)).reply.code).toBe(250);
    expect((await store.counts()).hold).toBe(1);
  });

  it('defers when the hook throws, even before reading', async () => {
    const { cleanup, store } = await setup(async () => {
      throw new Error('scanner crashed');
    });
    const result = await send(cleanup, `${CONTENT}${'x'.repeat(500_000)}\r\n`);
    expect(result.reply.toString()).toBe(
      '451 4.3.0 Error: content filter failure, try again later',
    );
    expect(await incoming(store)).toEqual([]);
  });

  it('accept with headers and a replacement body rewrites the queued message', async () => {
    const { cleanup, store } = await setup(async (_env, message) => {
      await readAll(message);
      return {
        action: 'accept',
        headers: ['X-Scanned: clean', 'not a header'],
        body: Readable.from([Buffer.from('replaced\nbody ü\n')]),
      };
    });
    expect((await send(cleanup)).reply.code).toBe(250);
    const { content, record } = await only(store);
    expect(content).toMatch(/Subject: hello\r\nX-Scanned: clean\r\n\r\nreplaced\r\nbody ü\r\n$/);
    expect(content).not.toContain('line one');
    expect(content.slice(record.headerSize)).toBe('replaced\r\nbody ü\r\n');
    expect(record.size).toBe(Buffer.byteLength(content));
    expect(record.eightBit).toBe(true);
  });

  it.each([
    ['MemoryQueueStore', async () => new MemoryQueueStore()],
    [
      'FileQueueStore',
      async () =>
        new FileQueueStore({ directory: await mkdtemp(join(tmpdir(), 'postern-filter-')) }),
    ],
  ])(
    'accept with headers alone keeps the body (%s re-reads what it wrote)',
    async (_name, make) => {
      const store = await make();
      const { cleanup } = await setup(async (_env, message) => {
        await readAll(message);
        return { action: 'accept', headers: ['X-Scanned: clean'] };
      }, store);
      try {
        expect((await send(cleanup)).reply.code).toBe(250);
        const { content, record } = await only(store);
        expect(content).toMatch(
          /Subject: hello\r\nX-Scanned: clean\r\n\r\nline one\r\nline two\r\n$/,
        );
        expect(record.size).toBe(Buffer.byteLength(content));
      } finally {
        await store.close();
        if (store instanceof FileQueueStore)
          await rm(store.directory, { recursive: true, force: true });
      }
    },
  );

  it('accept with headers alone defers with a store that cannot re-read', async () => {
    const plain = new MemoryQueueStore();
    const writerless: QueueStore = new Proxy(plain, {
      get(target, prop, receiver) {
        if (prop === 'create') {
          return async (id: string) => {
            const w = await target.create(id);
            return { queueId: w.queueId, content: w.content, commit: w.commit, abort: w.abort };
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const { cleanup } = await setup(async (_env, message) => {
      await readAll(message);
      return { action: 'accept', headers: ['X-Scanned: clean'] };
    }, writerless);
    expect((await send(cleanup)).reply.code).toBe(451);
    expect(await incoming(plain)).toEqual([]);
  });

  it('a hook that does not read holds the client back (backpressure), then completes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let bytes = 0;
    const { cleanup } = await setup(async (_env, message) => {
      await gate;
      for await (const chunk of message) bytes += (chunk as Buffer).length;
      return { action: 'accept' };
    });
    const tx = await cleanup.open(REMOTE);
    tx.setSender('alice@example.org');
    tx.addRecipient({ address: 'bob@example.com' });
    const big = Buffer.from(`${CONTENT}${'y'.repeat(76)}\r\n`.repeat(1)); // header part
    const body = Buffer.alloc(4 * 1024 * 1024, 'z\r\n');
    let produced = 0;
    async function* source(): AsyncGenerator<Buffer> {
      yield big;
      for (let i = 0; i < body.length; i += 16 * 1024) {
        produced += 16 * 1024;
        yield body.subarray(i, i + 16 * 1024);
      }
    }
    let finished = false;
    const done = pipeline(Readable.from(source()), tx.content).then(() => {
      finished = true;
    });
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    // The hook read nothing: only a few chunks' worth may have left the source.
    expect(finished).toBe(false);
    expect(produced).toBeLessThan(1024 * 1024);
    release();
    await done;
    const result = await tx.commit();
    expect(result.reply.code).toBe(250);
    expect(bytes).toBeGreaterThan(body.length);
  });
});
