/**
 * The end of a session's I/O over TLS: SessionIo ends a TLS stream with TLS's own
 * close_notify alert, even when nothing is left to write (where a plain TCP socket is
 * simply closed), and tells a TLS socket from a plain one without node:tls's classes.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { SessionIo } from '../../../src/receive/smtpd-session-io.js';
import { testCertificates } from '../../helpers/tls-cert.js';

/** TLS 1.2 record content types (RFC 5246 section 6.2.1), readable on the wire. */
const HANDSHAKE = 22;
const ALERT = 21;

/** The content types of the TLS records in `bytes`, in order. */
function recordTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 5 <= bytes.length; at += 5 + bytes.readUInt16BE(at + 3)) {
    types.push(bytes[at]!);
  }
  return types;
}

let server: tls.Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe("SessionIo's end over TLS", () => {
  it('sends close_notify before the end of stream when no reply is left to write', async () => {
    const { cert, key, ca } = testCertificates();
    server = tls.createServer({ cert, key }, (secure) => {
      const io = new SessionIo(secure, systemClock, 60_000, 2048);
      io.attach();
      io.end();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    // The TLS client runs over a stream that keeps every byte the server sends.
    const fromServer: Buffer[] = [];
    const wire = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        socket.write(chunk, done);
      },
      final(done) {
        socket.end();
        done();
      },
    });
    socket.on('data', (d: Buffer) => {
      fromServer.push(d);
      wire.push(d);
    });
    socket.on('end', () => wire.push(null));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const client = tls.connect({
      socket: wire,
      ca,
      servername: 'mx.example.test',
      // TLS 1.2 shows each record's type in its header; 1.3 hides alerts as data.
      maxVersion: 'TLSv1.2',
    });
    client.on('error', () => {});
    let secured = false;
    client.once('secureConnect', () => {
      secured = true;
    });
    await closed;
    expect(secured).toBe(true);
    // The handshake's records (which the alert may share a read with), the alert last.
    const types = recordTypes(Buffer.concat(fromServer));
    expect(types[0]).toBe(HANDSHAKE);
    expect(types.at(-1)).toBe(ALERT);
  });
});
