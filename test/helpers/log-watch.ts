/** Collects an Mta's log events and waits for the ones a test expects. */

import { Logger } from '../../src/log.js';
import type { LogEvent } from '../../src/types.js';

export interface LogWatch {
  readonly logger: Logger;
  readonly events: LogEvent[];
  /** Resolves with the first event (seen or to come) whose text matches; rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<LogEvent>;
  /** The delivery outcome logged for a recipient: `to=<address>, ... status=...`. */
  delivery(address: string, timeoutMs?: number): Promise<LogEvent>;
}

export function watchLog(): LogWatch {
  const events: LogEvent[] = [];
  const waiters = new Set<(e: LogEvent) => void>();
  const logger = new Logger([
    (e) => {
      events.push(e);
      for (const w of [...waiters]) w(e);
    },
  ]);
  const waitFor = (pattern: RegExp, timeoutMs = 20_000): Promise<LogEvent> => {
    const seen = events.find((e) => pattern.test(e.text));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (e: LogEvent): void => {
        if (!pattern.test(e.text)) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(e);
      };
      waiters.add(waiter);
    });
  };
  const quoteRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    logger,
    events,
    waitFor,
    delivery: (address, timeoutMs) =>
      waitFor(new RegExp(`to=<${quoteRegExp(address)}>,.* status=\\w+`), timeoutMs),
  };
}
