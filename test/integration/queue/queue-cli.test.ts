import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QueueCommandError, queueCommand } from '../../../src/cli/queue.js';
import { silentLogger } from '../../../src/log.js';
import { directQueueOperations, QueueControlServer } from '../../../src/queue/queue-control.js';
import { FileQueueStore } from '../../../src/queue/stores/file-store.js';
import { runPostern } from '../../helpers/postern-cli.js';
import { commitMessage, newRecord } from '../../unit/queue/stores/store-conformance.js';

const postern = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
  runPostern(args, { cwd, env: { PATH: process.env.PATH, ...env } });

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

  it('honours POSTERN_CONFIG, as postern sendmail does', async () => {
    const { queue, config } = setup();
    const { store, ids } = await fill(queue);
    await store.close();
    const list = await queueCommand(['list'], { POSTERN_CONFIG: config });
    expect(list).toContain(ids[0]);
    // The command line too, from a directory with no queue of its own.
    const cwd = join(queue, '..');
    const r = await postern(['queue', 'list'], cwd, { POSTERN_CONFIG: config });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(ids[1]);
    expect(existsSync(join(cwd, 'var'))).toBe(false);
  });

  it('says there is no queue, and creates none, where the config points at nothing', async () => {
    const { queue, config } = setup();
    for (const op of [['list'], ['shape'], ['hold', 'ALL'], ['flush']]) {
      const err = await queueCommand([...op, '--config', config]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QueueCommandError);
      expect((err as QueueCommandError).exitCode).toBe(69);
      expect((err as Error).message).toContain(`there is no queue at ${queue}`);
      expect((err as Error).message).toContain(`configured in ${config}`);
    }
    expect(existsSync(queue)).toBe(false);
    // A queue directory holding only a maildrop (sendmail ran, no server yet) is no queue.
    mkdirSync(join(queue, 'maildrop'), { recursive: true });
    await expect(queueCommand(['list', '--config', config])).rejects.toThrow(
      /no server has run there yet/,
    );
    expect(existsSync(join(queue, 'incoming'))).toBe(false);
    // `postern queue list` with no config: the default ./var/queue, which is not made.
    const cwd = join(queue, '..');
    const r = await postern(['queue', 'list'], cwd);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(
      /there is no queue at .*var\/queue \(the default; give --config FILE or set POSTERN_CONFIG\)/,
    );
    expect(existsSync(join(cwd, 'var'))).toBe(false);
  });
});
