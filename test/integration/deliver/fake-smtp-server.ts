/**
 * A scripted, fault-injecting SMTP/LMTP server on 127.0.0.1 for client tests: each
 * stage's reply can be replaced, the connection dropped mid-DATA or after some LMTP
 * replies, or a stage stalled. Records commands and message bodies.
 */

import { createServer, type Server, type Socket } from 'node:net';

export interface FakeScript {
  readonly greeting?: string;
  /** EHLO/LHLO reply lines after the first; `null` answers 502 (HELO fallback). */
  readonly features?: readonly string[] | null;
  readonly hostname?: string;
  readonly mail?: string;
  /** Reply to one RCPT; default 250. */
  readonly rcpt?: (address: string) => string;
  readonly data?: string;
  /** Reply to RSET; default 250. */
  readonly rset?: string;
  /** SMTP: one reply; LMTP: the reply for the nth accepted recipient. */
  readonly dataDone?: (index: number) => string;
  /** Close the connection after this many bytes of body. */
  readonly dropMidData?: number;
  /** LMTP: close after this many per-recipient replies. */
  readonly dropAfterReplies?: number;
  /** Never answer this stage. */
  readonly stall?: 'greeting' | 'mail' | 'dataDone';
}

export interface ReceivedMessage {
  readonly from: string;
  readonly to: readonly string[];
  /** Body as received on the wire, dot-stuffed, without the final `.` line. */
  readonly raw: string;
  readonly mailLine: string;
  readonly rcptLines: readonly string[];
}

export class FakeSmtpServer {
  readonly server: Server;
  readonly commands: string[] = [];
  readonly messages: ReceivedMessage[] = [];
  /** Every chunk read from a client, as it arrived (what one read returned). */
  readonly reads: string[] = [];
  connections = 0;
  #script: FakeScript;
  #sockets = new Set<Socket>();

  constructor(script: FakeScript = {}) {
    this.#script = script;
    this.server = createServer((s) => this.#session(s));
  }

  set script(script: FakeScript) {
    this.#script = script;
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  #session(socket: Socket): void {
    this.connections++;
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    const sc = this.#script;
    const host = sc.hostname ?? 'fake.test';
    const send = (text: string): void => {
      if (!socket.destroyed) socket.write(`${text}\r\n`);
    };
    if (sc.stall !== 'greeting') send(sc.greeting ?? `220 ${host} ESMTP fake`);
    let buf = '';
    let inData = false;
    let body = '';
    let lmtp = false;
    let from = '';
    let mailLine = '';
    let to: string[] = [];
    let rcptLines: string[] = [];
    let accepted: string[] = [];
    const onLine = (line: string): unknown => {
      this.commands.push(line);
      const verb = line.split(' ')[0]!.toUpperCase();
      switch (verb) {
        case 'EHLO':
        case 'LHLO': {
          lmtp = verb === 'LHLO';
          if (sc.features === null) return send('502 5.5.2 no EHLO');
          const f = sc.features ?? [
            'PIPELINING',
            '8BITMIME',
            'SIZE 10240000',
            'ENHANCEDSTATUSCODES',
          ];
          const lines = [host, ...f];
          for (const [i, l] of lines.entries())
            send(`250${i === lines.length - 1 ? ' ' : '-'}${l}`);
          return;
        }
        case 'HELO':
          return send(`250 ${host}`);
        case 'MAIL':
          if (sc.stall === 'mail') return;
          from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          mailLine = line;
          to = [];
          rcptLines = [];
          accepted = [];
          return send(sc.mail ?? '250 2.1.0 Ok');
        case 'RCPT': {
          const addr = /<([^>]*)>/.exec(line)?.[1] ?? '';
          rcptLines.push(line);
          const r = sc.rcpt?.(addr) ?? '250 2.1.5 Ok';
          if (r.startsWith('2')) accepted.push(addr);
          to.push(addr);
          return send(r);
        }
        case 'DATA': {
          const r =
            sc.data ??
            (accepted.length > 0
              ? '354 End data with <CR><LF>.<CR><LF>'
              : '554 5.5.1 no valid recipients');
          if (r.startsWith('354')) {
            inData = true;
            body = '';
          }
          return send(r);
        }
        case 'RSET':
          return send(sc.rset ?? '250 2.0.0 Ok');
        case 'QUIT':
          send('221 2.0.0 Bye');
          socket.end();
          return;
        case 'NOOP':
          return send('250 2.0.0 Ok');
        default:
          return send('502 5.5.2 Error: command not recognized');
      }
    };
    const endData = (): void => {
      inData = false;
      this.messages.push({ from, to: accepted, raw: body, mailLine, rcptLines });
      if (sc.stall === 'dataDone') return;
      const n = lmtp ? accepted.length : 1;
      for (let i = 0; i < n; i++) {
        if (sc.dropAfterReplies !== undefined && i >= sc.dropAfterReplies) {
          socket.destroy();
          return;
        }
        send(sc.dataDone?.(i) ?? '250 2.0.0 Ok: queued as FAKE');
      }
    };
    socket.on('data', (chunk: Buffer) => {
      this.reads.push(chunk.toString('latin1'));
      buf += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          const startEnd = body === '' && buf.startsWith('.\r\n') ? 0 : -1;
          if (sc.dropMidData !== undefined && body.length + buf.length > sc.dropMidData) {
            socket.destroy();
            return;
          }
          if (startEnd === 0) {
            buf = buf.slice(3);
            endData();
            continue;
          }
          if (end < 0) {
            // Keep a tail that may hold the start of the terminator.
            if (buf.length > 5) {
              body += buf.slice(0, buf.length - 5);
              buf = buf.slice(buf.length - 5);
            }
            return;
          }
          body += buf.slice(0, end + 2);
          buf = buf.slice(end + 5);
          endData();
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        onLine(line);
      }
    });
  }
}

/** Undoes dot-stuffing of a received body. */
export function unstuff(raw: string): string {
  return raw.replace(/(^|\r\n)\.\./g, '$1.');
}
