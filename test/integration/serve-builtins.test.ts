/**
 * The node builtins `postern serve` loads in its default configuration (discard
 * transport, no TLS, no metrics, no worker processes, no command delivery): in neither
 * its main thread nor its smtpd worker thread any of TLS, HTTP, cluster, child
 * processes, datagrams or DNS before it listens, nor TLS or HTTP after it has taken and
 * discarded mail; and no crypto in the smtpd thread, whose queue ID tag the main thread
 * draws. Each costs every V8 heap that loads it. A probe loaded with `--import` reads
 * `process.moduleLoadList` in each thread just before its first socket listens (where
 * node's net loads node:cluster, and with it node:child_process and node:dgram, for a
 * listening socket of its own) and when the thread exits.
 *
 * @module
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type PosternProcess, startPostern } from '../helpers/postern-process.js';
import { HOST, sendThroughNodemailer } from '../helpers/worker-load.js';

const PROBE = fileURLToPath(new URL('../helpers/builtin-probe.mjs', import.meta.url));

/** Loaded by no thread of the default configuration at any time. */
const NEVER = ['tls', '_tls_wrap', 'https', 'http', '_http_client', '_http_server'];
/** Loaded by node itself once a socket listens, so absent only until then. */
const NOT_BEFORE_LISTENING = ['cluster', 'child_process', 'dgram', 'dns'];

/** The builtins each thread had loaded at `when`, by thread (`main`, `thread-N`). */
async function probed(dir: string, when: 'listen' | 'exit'): Promise<Map<string, string[]>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(`.${when}.json`));
  const out = new Map<string, string[]>();
  for (const f of files) {
    out.set(f.slice(0, -`.${when}.json`.length), JSON.parse(await readFile(join(dir, f), 'utf8')));
  }
  return out;
}

describe('postern serve in its default configuration', () => {
  const dirs: string[] = [];
  let server: PosternProcess | undefined;
  afterAll(async () => {
    await server?.stop('SIGKILL');
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('loads no TLS, HTTP, cluster, child process, datagram or DNS module of node in either thread, and no crypto in the smtpd thread', {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-builtins-'));
    const probes = await mkdtemp(join(tmpdir(), 'postern-builtin-probe-'));
    dirs.push(dir, probes);
    const saved = { ...process.env };
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${PROBE}`.trim();
    process.env.POSTERN_TEST_BUILTIN_PROBE = probes;
    try {
      server = await startPostern(dir, {
        myhostname: HOST,
        smtpd: [{ listen: '127.0.0.1:0' }],
        defaultTransport: 'discard',
        queueDirectory: join(dir, 'queue'),
      });
    } finally {
      process.env = saved;
    }
    const [id] = await sendThroughNodemailer(server.port, ['someone@remote.example']);
    await server.waitForLine(new RegExp(`${id}: removed`), 30_000);
    expect(await server.stop('SIGTERM')).toBe(0);

    const atListen = await probed(probes, 'listen');
    const atExit = await probed(probes, 'exit');
    // The main thread and the one smtpd thread, both seen at both moments.
    const threads = [...atListen.keys()].filter((who) => who !== 'main');
    expect(threads).toHaveLength(1);
    expect([...atListen.keys()].sort()).toEqual(['main', threads[0]]);
    expect([...atExit.keys()].sort()).toEqual(['main', threads[0]]);
    const main = { listen: atListen.get('main')!, exit: atExit.get('main')! };
    const thread = { listen: atListen.get(threads[0]!)!, exit: atExit.get(threads[0]!)! };
    for (const [who, seen] of [
      ['main', main],
      ['smtpd thread', thread],
    ] as const) {
      // The probe sees what loads: node's net, and what node loads for a listening socket.
      expect(seen.listen, who).toContain('net');
      expect(seen.exit, who).toContain('cluster');
      for (const name of [...NEVER, ...NOT_BEFORE_LISTENING]) {
        expect(seen.listen, `${who} before listening`).not.toContain(name);
      }
      for (const name of NEVER) expect(seen.exit, `${who} at exit`).not.toContain(name);
    }
    // The main thread listens only on UNIX sockets, for which node looks up no name.
    expect(main.exit).not.toContain('dns');
    expect(thread.listen).not.toContain('crypto');
    expect(thread.exit).not.toContain('crypto');
  });
});
