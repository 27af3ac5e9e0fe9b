/**
 * A recording SMTP sink for cluster tests: smtp-server (the npm peer) accepting every
 * message, counting deliveries per recipient and per delivering node (its EHLO name),
 * with an optional delay before the reply to one node's deliveries, so that node keeps
 * mail in flight.
 *
 * @module
 */

import { SMTPServer } from 'smtp-server';
import { ConditionWaits } from './condition-waits.js';

export interface SinkServer {
  readonly port: number;
  /** Deliveries per recipient (lower-cased). */
  readonly byRecipient: Map<string, number>;
  /** The size in bytes of the last message delivered to each recipient (lower-cased). */
  readonly sizeByRecipient: Map<string, number>;
  /** Deliveries per delivering node (EHLO name). */
  readonly byNode: Map<string, number>;
  /** Delays the 250 to deliveries from `helo` by `ms` (0: no delay). */
  slow(helo: string, ms: number): void;
  /** Resolves once every recipient of `want` has been delivered, or after `ms`. */
  waitFor(want: Iterable<string>, ms: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Starts a sink on 127.0.0.1, a free port. */
export async function startSink(): Promise<SinkServer> {
  const byRecipient = new Map<string, number>();
  const sizeByRecipient = new Map<string, number>();
  const byNode = new Map<string, number>();
  const delays = new Map<string, number>();
  const waits = new ConditionWaits();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    maxClients: 500,
    onData(stream, session, callback) {
      let size = 0;
      stream.on('data', (chunk: Buffer) => (size += chunk.length));
      stream.on('end', () => {
        const helo = (session.hostNameAppearsAs ?? '').toLowerCase();
        const accept = () => {
          for (const r of session.envelope.rcptTo) {
            const address = r.address.toLowerCase();
            byRecipient.set(address, (byRecipient.get(address) ?? 0) + 1);
            sizeByRecipient.set(address, size);
          }
          byNode.set(helo, (byNode.get(helo) ?? 0) + 1);
          callback();
          waits.wake();
        };
        const delay = delays.get(helo) ?? 0;
        if (delay > 0) setTimeout(accept, delay);
        else accept();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    byRecipient,
    sizeByRecipient,
    byNode,
    slow(helo, ms) {
      delays.set(helo.toLowerCase(), ms);
    },
    waitFor(want, ms) {
      const wanted = [...want].map((w) => w.toLowerCase());
      return waits.until(() => wanted.every((w) => byRecipient.has(w)), ms);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
