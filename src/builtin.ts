/**
 * builtin(): a node builtin module that is loaded on its first use, not when a file that
 * may need it is imported.
 *
 * Postfix counterpart: smtpd(8) and smtp(8) set up the TLS library only when TLS is
 * turned on (`tls_server_init()`, `tls_client_init()`), and master(8) forks what a
 * service needs when it needs it; a program does not pay for a feature it does not run.
 *
 * A top-level `import` of `node:tls`, `node:https`, `node:cluster`, `node:child_process`
 * and the like loads that module, and everything it pulls in, into every V8 heap that
 * imports the file: the main thread and each smtpd worker thread. They cost each heap
 * resident memory and live objects, and the default configuration (no TLS, no metrics,
 * no worker processes, no command delivery) uses none of them but node:crypto's random
 * bytes in the main thread. The files that use them ask here at the moment a feature
 * runs; `import type` costs nothing and keeps their types.
 *
 * Does not: load packages from node_modules (the few loaded on demand call createRequire
 * themselves), or load anything asynchronously: a builtin loads synchronously, once, and
 * later calls return node's cached module.
 *
 * @module
 */

import { createRequire } from 'node:module';

/** The builtins loaded on demand, by name, with their types. */
export interface OnDemandBuiltins {
  readonly child_process: typeof import('node:child_process');
  readonly cluster: typeof import('node:cluster').default;
  readonly crypto: typeof import('node:crypto');
  readonly dns: typeof import('node:dns');
  readonly http: typeof import('node:http');
  readonly https: typeof import('node:https');
  readonly tls: typeof import('node:tls');
}

// createRequire works alike in the ESM and the CommonJS build (import.meta.url is shimmed
// there); process.getBuiltinModule would need node 20.16.
const load = createRequire(import.meta.url);

/**
 * Node's builtin `name`, loaded now if nothing has loaded it yet.
 *
 * @example
 * ```ts
 * const context = builtin('tls').createSecureContext({ cert, key });
 * ```
 */
export function builtin<Name extends keyof OnDemandBuiltins>(name: Name): OnDemandBuiltins[Name] {
  return load(`node:${name}`) as OnDemandBuiltins[Name];
}
