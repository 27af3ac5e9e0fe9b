import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startPostern } from '../../helpers/postern-process.js';

const MB = 1024 * 1024;

function kib(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]) * 1024;
}

/** Streams one message of `size` body bytes over SMTP, honouring backpressure; resolves with the final reply. */
function sendLarge(port: number, size: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = '';
    let step = 0;
    const script = [
      'EHLO big.example',
      'MAIL FROM:<big@example.test>',
      'RCPT TO:<sink@remote.example>',
      'DATA',
    ];
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('data', (d: string) => {
      buffer += d;
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (/^\d{3}-/.test(line)) continue;
        if (step < script.length) {
          socket.write(`${script[step++]}\r\n`);
        } else if (step === script.length) {
          step++;
          if (!line.startsWith('354')) return reject(new Error(`DATA refused: ${line}`));
          void pump();
        } else {
          socket.end('QUIT\r\n');
          resolve(line);
        }
      }
    });
    const line = `${'x'.repeat(998)}\r\n`;
    const chunk = Buffer.from(line.repeat(64)); // 64 KB of body lines
    const pump = async () => {
      socket.write('Subject: large\r\n\r\n');
      for (let sent = 0; sent < size; sent += chunk.length) {
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
      }
      socket.write('.\r\n');
    };
  });
}

// Issue 3, acceptance 4: a 100 MB message is accepted while the server's resident memory
// grows by less than 64 MB (the data path streams; nothing holds the whole message).
describe('a 100 MB message through smtpd, Cleanup and the file queue', () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is accepted with resident memory growing less than 64 MB', async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-large-'));
    const server = await startPostern(dir, {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      messageSizeLimit: 200 * MB,
      defaultTransport: 'discard',
    });
    try {
      const pid = server.child.pid!;
      const before = kib(pid, 'VmRSS');
      writeFileSync(`/proc/${pid}/clear_refs`, '5'); // reset the high-water mark
      const reply = await sendLarge(server.port, 100 * MB);
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as/);
      const peak = kib(pid, 'VmHWM');
      const growth = peak - before;
      console.log(
        `100 MB message: RSS before ${(before / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB, growth ${(growth / MB).toFixed(1)} MB`,
      );
      expect(growth).toBeLessThan(64 * MB);
    } finally {
      await server.stop();
    }
  }, 180_000);
});
