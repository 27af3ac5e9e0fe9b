/**
 * The heap a test's objects hold: `liveHeap()` is the heap in use after full
 * collections (what is live, not what awaits collection), taken before and after
 * building something, divided by how many were built.
 *
 * @module
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// gc() without starting the test process with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
setFlagsFromString('--no-expose-gc');

/** Heap in use after full collections, in bytes. */
export function liveHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
