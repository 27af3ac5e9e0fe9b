/**
 * Pickup while the queue cannot take mail: Cleanup over a PostgresQueueStore whose
 * server is stopped refuses every maildrop file with 451 4.3.0. The files stay in the
 * maildrop; the refusal is logged for the first file only, however many files and
 * scans; when the server is back the files are queued and the end of the wait is
 * logged once.
 *
 * @module
 */

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cleanup } from '../../../src/cleanup/cleanup.js';
import { Logger } from '../../../src/log.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { PostgresQueueStore } from '../../../src/queue/stores/postgres-store.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { maildropDirectory } from '../../../src/receive/maildrop.js';
import { Pickup } from '../../../src/receive/pickup.js';
import { submitToMaildrop } from '../../../src/receive/submit.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import type { LogEvent } from '../../../src/types.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../helpers/postgres-server.js';

describe('Pickup during a queue outage', () => {
  let server: PostgresServer;
  let dir: string;
  const schema = freshSchemaName('pickup');

  beforeAll(async () => {
    server = await startPostgres({ own: true });
    dir = await mkdtemp(join(tmpdir(), 'postern-pickup-outage-'));
  }, 60_000);

  afterAll(async () => {
    await dropSchema(server.url, schema).catch(() => undefined);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs the refusal once per outage, keeps the files, and queues them when it is over', async () => {
    const events: LogEvent[] = [];
    const logger = new Logger([(e) => events.push(e)]);
    const params = resolveParameters({ myhostname: 'mx.example.test' });
    const store = new PostgresQueueStore({ url: server.url, schema, logger });
    await store.open();
    const cleanup = new Cleanup({
      params,
      store,
      rewriter: new Rewriter({ params }),
      queueIds: new QueueIdGenerator(),
      logger,
    });
    const pickup = new Pickup({
      directory: maildropDirectory(dir),
      submission: cleanup,
      params,
      logger,
    });
    const pickupLines = (level: string) =>
      events.filter((e) => e.component === 'pickup' && e.level === level).map((e) => e.text);
    try {
      const FILES = 4;
      for (let i = 0; i < FILES; i++) {
        await submitToMaildrop(dir, {
          from: 'app@example.test',
          to: ['someone@example.test'],
          content: `Subject: ${i}\n\nbody\n`,
        });
      }
      await server.halt('fast');
      try {
        expect(await pickup.scan()).toBe(0);
        expect(await pickup.scan()).toBe(0);
      } finally {
        await server.resume();
      }
      const maildrop = (await readdir(maildropDirectory(dir))).filter((n) => !n.startsWith('.'));
      expect(maildrop.filter((n) => n !== 'corrupt')).toHaveLength(FILES);
      const warnings = pickupLines('warning');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^\w+: 451 4\.3\.0 Error: queue file write error; will try again \(other files refused the same way are not logged until mail is queued again\)$/,
      );

      // Back: the next scans queue every file, once the store has seen the server answer.
      let queued = 0;
      await vi.waitFor(
        async () => {
          queued += await pickup.scan();
          expect(queued).toBe(FILES);
        },
        { timeout: 20_000, interval: 200 },
      );
      expect(pickupLines('warning')).toHaveLength(1);
      expect(pickupLines('info').filter((l) => /^mail is queued again/.test(l))).toEqual([
        `mail is queued again; ${FILES} maildrop files had to wait (451 4.3.0 Error: queue file write error)`,
      ]);
      expect((await store.counts()).incoming).toBe(FILES);
    } finally {
      await pickup.stop();
      await cleanup.close();
      await store.close();
    }
  });
});
