#!/usr/bin/env node
// Entry point of the `postern` command: the built CLI lives in dist/.
// libuv's thread pool serves every fsync; four threads make concurrent commits queue
// behind each other, so give it more before anything touches the file system.
process.env.UV_THREADPOOL_SIZE ??= '16';
if (process.argv[2] === 'serve') {
  // The daemon's garbage is short-lived per-message objects: V8's young generation
  // otherwise grows its semi-spaces from 1 to 16 MiB each, some 35 MiB of resident memory
  // that buys no throughput here. --max-semi-space-size is read only when the heap is
  // made, but the growth factor is read at each scavenge, so setting it to 1 now keeps
  // the semi-spaces at their initial size. An operator who tunes the young generation in
  // NODE_OPTIONS (or on node's command line) keeps their setting.
  const own = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  if (!/semi[-_]space/.test(own)) {
    const { setFlagsFromString } = await import('node:v8');
    setFlagsFromString('--semi-space-growth-factor=1');
  }
}
await import('../dist/cli/main.js');
