// Loaded with `node --import` into `postern serve`: in the smtpd worker thread, writes the
// thread's resource limits and the size of its young generation's semi-spaces, as V8
// made them, to the file named by POSTERN_TEST_HEAP_PROBE.
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import { isMainThread, resourceLimits } from 'node:worker_threads';

const out = process.env.POSTERN_TEST_HEAP_PROBE;
if (!isMainThread && out) {
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  writeFileSync(out, JSON.stringify({ resourceLimits, newSpaceBytes: young?.space_size }));
}
