import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { FileQueueStore } from '../../../src/queue/stores/file-store.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import type { MessageWriter, QueueStore } from '../../../src/queue/types.js';
import { harness, incoming, LOOPBACK, REMOTE, readAll, submit } from './harness.js';

const MB = 1024 * 1024;

describe('Cleanup: backpressure', () => {
  it('streams a 20 MB body through a slow store without running ahead of it', async () => {
    let consumed = 0;
    let produced = 0;
    let maxInFlight = 0;
    let sinkChunks = 0;

    // The real MemoryQueueStore keeps the envelope; the content goes to a slow sink
    // that takes one small chunk per timer tick and keeps nothing.
    const inner = new MemoryQueueStore();
    const slow: QueueStore = Object.create(inner) as QueueStore;
    slow.open = () => inner.open();
    slow.create = async (id): Promise<MessageWriter> => {
      const real = await inner.create(id);
      const content = new Writable({
        highWaterMark: 16 * 1024,
        write(chunk: Buffer, _enc, cb) {
          sinkChunks++;
          setTimeout(() => {
            consumed += chunk.length;
            cb();
          }, 0);
        },
      });
      return {
        queueId: id,
        content,
        commit: async (record) => {
          content.end();
          await new Promise((r) => content.once('finish', r));
          await real.commit(record);
        },
        abort: () => real.abort(),
      };
    };
    const h = await harness({ messageSizeLimit: 0 }, slow);

    const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
    const chunkSize = 64 * 1024 - ((64 * 1024) % line.length);
    const total = 20 * MB;
    async function* body(): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: big\r\n\r\n');
      while (produced < total) {
        const chunk = Buffer.alloc(chunkSize);
        for (let o = 0; o + line.length <= chunkSize; o += line.length) line.copy(chunk, o);
        produced += chunk.length;
        maxInFlight = Math.max(maxInFlight, produced - consumed);
        yield chunk;
      }
    }

    const tx = await h.cleanup.open(REMOTE);
    tx.setSender('a@example.org');
    tx.addRecipient({ address: 'b@example.net' });
    await pipeline(Readable.from(body(), { objectMode: false }), tx.content);
    const result = await tx.commit();

    expect(result.reply.code).toBe(250);
    expect(produced).toBeGreaterThanOrEqual(total);
    expect(sinkChunks).toBeGreaterThan(100);
    // Without backpressure the producer would be megabytes ahead of the sink.
    expect(maxInFlight).toBeLessThan(2 * MB);
    const [stored] = await incoming(inner);
    const record = stored!.record;
    expect(record.size).toBe(consumed);
    expect(record.size - record.headerSize).toBe(produced);
  }, 60_000);
});

describe('Cleanup with FileQueueStore', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('queues durable messages on disk and leaves nothing after a failed or aborted one', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-cleanup-'));
    const store = new FileQueueStore({ directory: dir });
    const h = await harness({ messageSizeLimit: 4 * MB }, store);
    try {
      const body = `${'y'.repeat(998)}\r\n`.repeat(3000); // ~3 MB
      const ok = await submit(h, {
        source: LOOPBACK,
        sender: 'a@example.org',
        recipients: ['b@example.net'],
        content: [Buffer.from('Subject: disk\r\n\r\n'), Buffer.from(body)],
      });
      expect(ok.reply.code).toBe(250);
      expect(await fs.readdir(path.join(dir, 'incoming'))).toEqual([ok.queueId]);

      const tooBig = await submit(h, {
        sender: 'a@example.org',
        recipients: ['b@example.net'],
        content: `Subject: big\r\n\r\n${'z'.repeat(5 * MB)}\r\n`,
      });
      expect(tooBig.reply.code).toBe(552);
      const tx = await h.cleanup.open(REMOTE);
      tx.content.write('Subject: abandoned\r\n\r\n');
      await tx.abort();

      expect(await fs.readdir(path.join(dir, 'incoming'))).toEqual([ok.queueId]);
      expect(await fs.readdir(path.join(dir, 'tmp')).catch(() => [])).toEqual([]);

      const [msg] = await incoming(store);
      expect(msg!.record.queueId).toBe(ok.queueId);
      expect(msg!.content).toContain(
        `Subject: disk\r\nMessage-Id: <20261129120000.${ok.queueId}@mx.example.com>\r\n`,
      );
      expect(msg!.content.endsWith(body)).toBe(true);
      expect(msg!.record.size).toBe(Buffer.byteLength(msg!.content));
      expect(await readAll(store.openContent(ok.queueId!))).toBe(msg!.content);
    } finally {
      await store.close();
    }
  });
});
