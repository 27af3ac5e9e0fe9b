// Loaded with `node --import` into `postern serve`: in the main thread and in each worker
// thread, writes the node builtins loaded so far (process.moduleLoadList) to the
// directory named by POSTERN_TEST_BUILTIN_PROBE, as a JSON array in
// `WHO.listen.json` just before the first socket starts listening (node's net loads
// node:cluster there, and with it node:child_process and node:dgram) and in
// `WHO.exit.json` when the thread exits. WHO is `main` or `thread-N`.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';

const dir = process.env.POSTERN_TEST_BUILTIN_PROBE;
if (dir) {
  const who = isMainThread ? 'main' : `thread-${threadId}`;
  const write = (when) => {
    const builtins = process.moduleLoadList
      .filter((m) => m.startsWith('NativeModule '))
      .map((m) => m.slice('NativeModule '.length));
    writeFileSync(join(dir, `${who}.${when}.json`), JSON.stringify(builtins));
  };
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function firstListen(...args) {
    net.Server.prototype.listen = listen;
    write('listen');
    return listen.apply(this, args);
  };
  process.on('exit', () => write('exit'));
}
