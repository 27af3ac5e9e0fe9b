#!/usr/bin/env node
// Entry point of the `postern` command: the built CLI lives in dist/.
// libuv's thread pool serves every fsync; four threads make concurrent commits queue
// behind each other, so give it more before anything touches the file system.
process.env.UV_THREADPOOL_SIZE ??= '16';
if (process.argv[2] === 'serve') {
  // The daemon's garbage is short-lived per-message objects and its live heap is small,
  // yet V8 sizes its heap for throughput: semi-spaces growing from 1 to 16 MiB each and
  // an old generation let to grow up to 4x its live size before a full collection, some
  // 60 MiB of resident memory at 20 sessions that buys no throughput here. The heap's
  // sizes are fixed when it is made (--max-semi-space-size and the like), but these two
  // flags are read at each collection, so setting them now keeps the semi-spaces at their
  // initial size and collects the old generation when it has doubled. A flag the
  // operator sets in NODE_OPTIONS or on node's command line is left as they set it.
  const own = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  const { setFlagsFromString } = await import('node:v8');
  if (!/semi[-_]space/.test(own)) setFlagsFromString('--semi-space-growth-factor=1');
  if (!/heap[-_]growing[-_]percent/.test(own)) setFlagsFromString('--heap-growing-percent=100');
}
await import('../dist/cli/main.js');
