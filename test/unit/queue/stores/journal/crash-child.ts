/**
 * The child process of the journal's kill -9 test: 20 writers commit 4 KB messages to
 * the journal in the directory given as argv[2] as fast as they can, and remove every
 * third one durably. Each acknowledgement is written to stdout (a pipe, written
 * synchronously) only after the journal resolved it: `A <id>` for a durable commit,
 * `R <id>` for a durable removal (announced by `D <id>` before it is asked for),
 * `S <fdatasyncs> <durable frames> <spare segments filled>` now and then. The
 * parent kills it with SIGKILL in the middle of all this.
 */

import { writeSync } from 'node:fs';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { contentFor, storedFor } from './journal-messages.js';

const directory = process.argv[2]!;
const segmentSize = Number(process.argv[3] ?? 256 * 1024);

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

const journal = await Journal.open({ directory, segmentSize });
const ids = new QueueIdGenerator();
say(`O ${journal.recovery.messages}`);
let n = 0;
async function writer(): Promise<void> {
  for (;;) {
    const id = ids.next();
    await journal.appendMessage(storedFor(id), [contentFor(id)]);
    say(`A ${id}`);
    if (++n % 3 === 0) {
      say(`D ${id}`);
      await journal.markRemoved(id, true);
      say(`R ${id}`);
    }
    if (n % 50 === 0) {
      const s = journal.stats();
      say(`S ${s.syncs} ${s.durableFrames} ${s.segmentsPreallocated}`);
    }
  }
}
await Promise.all(Array.from({ length: 20 }, writer));
