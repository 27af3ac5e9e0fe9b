#!/usr/bin/env node
// Entry point of the `postern` command: the built CLI lives in dist/.
// libuv's thread pool serves every fsync; four threads make concurrent commits queue
// behind each other, so give it more before anything touches the file system.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/cli/main.js');
