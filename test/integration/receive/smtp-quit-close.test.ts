/**
 * The close after the last reply: like Postfix's smtpd, the session closes its socket
 * once the 221 is written, and the client reads the whole reply and then an orderly
 * end of stream. A client that does not read its replies still gets every one of them,
 * the 221 last.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { Logger } from '../../../src/log.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { SmtpReceiver } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import type { Clock } from '../../../src/types.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';

/** The system clock, counting the timers armed through it. */
function countingClock(): { clock: Clock; armed: () => number } {
  let armed = 0;
  const clock: Clock = {
    now: () => systemClock.now(),
    setTimeout(fn, ms) {
      armed++;
      return systemClock.setTimeout(fn, ms);
    },
  };
  return { clock, armed: () => armed };
}

let receiver: SmtpReceiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

async function start(clock: Clock, overrides: Record<string, unknown> = {}): Promise<number> {
  const params = resolveParameters({
    myhostname: 'mx.example.test',
    mynetworks: ['192.0.2.0/24'],
    smtpdErrorSleepTime: 0,
    localRecipientMaps: '',
    ...overrides,
  });
  receiver = new SmtpReceiver({
    params,
    submission: new RecordingSubmission(),
    rewriter: new Rewriter({ params }),
    logger: new Logger(),
    clock,
  });
  const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
  return port;
}

/** Everything the server sends until it ends the stream, and whether the end was orderly. */
function readAll(socket: net.Socket): Promise<{ text: string; error: Error | undefined }> {
  return new Promise((resolve) => {
    let text = '';
    let error: Error | undefined;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('error', (err) => {
      error = err;
    });
    socket.on('close', () => resolve({ text, error }));
    socket.on('end', () => socket.end());
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Waits until `text` holds `needle`. */
function waitFor(socket: net.Socket, seen: () => string, needle: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!seen().includes(needle)) return;
      socket.off('data', check);
      resolve();
    };
    socket.on('data', check);
    check();
  });
}

describe('the close after QUIT', () => {
  it('closes once the 221 is written, with no timer of its own, and the client reads it all', async () => {
    const { clock, armed } = countingClock();
    const port = await start(clock);
    const socket = await connect(port);
    let seen = '';
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
    });
    const all = readAll(socket);
    await waitFor(socket, () => seen, '220 ');
    socket.write('EHLO client.example.org\r\n');
    await waitFor(socket, () => seen, '250 ');
    const before = armed();
    socket.write('QUIT\r\n');
    const { text, error } = await all;
    expect(error).toBeUndefined();
    expect(text.endsWith('221 2.0.0 Bye\r\n')).toBe(true);
    // The session's one idle timer was armed at its start; the close needs none.
    expect(armed() - before).toBe(0);
  });

  it('gives a client that pipelines much and reads late every reply, the 221 last, then the end of stream', async () => {
    const { clock } = countingClock();
    const port = await start(clock, {
      smtpdJunkCommandLimit: 1_000_000,
      smtpdForbidUnauthPipelining: false,
    });
    const socket = await connect(port);
    // More replies than the socket buffers hold while the client is not reading.
    const noops = 100_000;
    socket.pause();
    await new Promise<void>((resolve) => {
      socket.write(`EHLO client.example.org\r\n${'NOOP\r\n'.repeat(noops)}QUIT\r\n`, () =>
        resolve(),
      );
    });
    const all = readAll(socket);
    socket.resume();
    const { text, error } = await all;
    expect(error).toBeUndefined();
    const lines = text.split('\r\n').filter((l) => l !== '');
    expect(lines.filter((l) => l === '250 2.0.0 Ok')).toHaveLength(noops);
    expect(lines.at(-1)).toBe('221 2.0.0 Bye');
  });
});
