/** A QMQP client for tests: one message per connection, as qmqp-source sends it. */

import { connect } from 'node:net';

export interface QmqpReply {
  readonly status: string;
  readonly text: string;
  readonly raw: string;
}

function ns(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length}:`), data, Buffer.from(',')]);
}

/** The request bytes: netstring(netstring(message) netstring(sender) netstring(rcpt)...). */
export function qmqpRequest(
  message: string | Buffer,
  sender: string | Buffer,
  recipients: readonly (string | Buffer)[],
): Buffer {
  const bytes = (v: string | Buffer): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'));
  const parts = [ns(bytes(message)), ns(bytes(sender)), ...recipients.map((r) => ns(bytes(r)))];
  return ns(Buffer.concat(parts));
}

/** Sends raw bytes (then half-closes when `end`) and reads the reply netstring until the server closes. */
export function qmqpExchange(
  port: number,
  request: Buffer | string,
  options: { end?: boolean; timeoutMs?: number } = {},
): Promise<QmqpReply> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no QMQP reply within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const m = /^(\d+):([\s\S]*),$/.exec(raw);
      if (!m || Number(m[1]) !== Buffer.byteLength(m[2]!)) {
        reject(new Error(`malformed QMQP reply: ${JSON.stringify(raw)}`));
        return;
      }
      resolve({ status: m[2]!.slice(0, 1), text: m[2]!.slice(1), raw });
    });
    socket.on('connect', () => {
      if (options.end) socket.end(request);
      else socket.write(request);
    });
  });
}

export function qmqpSend(
  port: number,
  message: string | Buffer,
  sender: string,
  recipients: readonly string[],
): Promise<QmqpReply> {
  return qmqpExchange(port, qmqpRequest(message, sender, recipients));
}
