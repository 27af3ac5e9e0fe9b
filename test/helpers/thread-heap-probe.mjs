// Loaded with `node --import` into `postern serve`: in the smtpd worker thread, writes the
// thread's resource limits to the file named by POSTERN_TEST_HEAP_PROBE as soon as it
// runs, and, when the thread exits, which packages it loaded through require (a package
// without an ESM build, imported, is loaded that way too).
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread, resourceLimits } from 'node:worker_threads';

const out = process.env.POSTERN_TEST_HEAP_PROBE;
if (!isMainThread && out) {
  const write = (packages) => writeFileSync(out, JSON.stringify({ resourceLimits, packages }));
  write(undefined);
  process.on('exit', () => {
    const names = Object.keys(createRequire(import.meta.url).cache).map(
      (path) => /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(path)?.[1],
    );
    write([...new Set(names.filter(Boolean))].sort());
  });
}
