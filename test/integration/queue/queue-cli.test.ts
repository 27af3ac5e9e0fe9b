import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { queueCommand } from '../../../src/cli/queue.js';
import { silentLogger } from '../../../src/log.js';
import { FileQueueStore } from '../../../src/queue/file-store.js';
import { directQueueOperations, QueueControlServer } from '../../../src/queue/queue-control.js';
import { commitMessage, newRecord } from '../../unit/queue/store-conformance.js';

const dirs: string[] = [];
function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'postern-qcli-'));
  dirs.push(dir);
  const queue = join(dir, 'q');
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ queueStore: { type: 'file', directory: queue } }));
  return { queue, config };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function fill(queue: string): Promise<{ store: FileQueueStore; ids: string[] }> {
  const store = new FileQueueStore({ directory: queue });
  await store.open();
  const ids = [
    await commitMessage(store, 'Subject: a\r\n\r\nx\r\n', {
      recipients: newRecord('x').recipients.map((r) => ({ ...r, address: 'u@alpha.test' })),
      arrivalTime: Date.now() - 30 * 60_000,
    }),
    await commitMessage(store, 'Subject: b\r\n\r\ny\r\n', {
      recipients: newRecord('x').recipients.map((r) => ({ ...r, address: 'v@beta.test' })),
      arrivalTime: Date.now(),
    }),
  ];
  return { store, ids };
}

describe('postern queue', () => {
  it('works on the store directly when no server runs', async () => {
    const { queue, config } = setup();
    const { store, ids } = await fill(queue);
    await store.close();
    const list = await queueCommand(['list', '--config', config]);
    expect(list).toContain('-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------');
    expect(list).toContain(ids[0]);
    expect(list).toContain('u@alpha.test');
    expect(list).toMatch(/-- \d+ Kbytes in 2 Requests\./);
    const shape = await queueCommand(['shape', '--config', config]);
    expect(shape).toMatch(/TOTAL\s+2\s+1\s+0\s+0\s+1/);
    expect(shape).toMatch(/alpha\.test\s+1/);
    expect(await queueCommand(['hold', ids[0]!, '--config', config])).toBe(
      'postern queue: 1 message placed on hold\n',
    );
    expect(await queueCommand(['list', '--config', config])).toContain(`${ids[0]}!`);
    expect(await queueCommand(['delete', 'ALL', '--config', config])).toContain(
      '2 messages deleted',
    );
    expect(await queueCommand(['list', '--config', config])).toBe('Mail queue is empty\n');
  });

  it('asks the running server through its control socket while the store is locked', async () => {
    const { queue, config } = setup();
    const { store, ids } = await fill(queue);
    const control = new QueueControlServer({
      directory: store.directory,
      operations: directQueueOperations(store),
      log: silentLogger.for('test'),
    });
    await control.listen();
    try {
      // The store is open (and its directory locked) here: only the socket can answer.
      expect(await queueCommand(['hold', 'ALL', '--config', config])).toContain(
        '2 messages placed on hold',
      );
      expect((await store.counts()).hold).toBe(2);
      expect(await queueCommand(['release', ids[1]!, '--config', config])).toContain(
        '1 message released',
      );
      expect((await store.counts()).deferred).toBe(1);
      const shape = await queueCommand(['shape', '--config', config]);
      expect(shape).toMatch(/beta\.test\s+1/);
      await expect(queueCommand(['hold', 'not-an-id!', '--config', config])).rejects.toThrow(
        /not a queue ID/,
      );
    } finally {
      await control.close();
      await store.close();
    }
  });
});
