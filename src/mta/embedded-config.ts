/**
 * The embedded default: the config `postern serve` (and so `npm start`) runs when it is
 * given none — a developer's MTA on 127.0.0.1:2525 that keeps mail for the local
 * domains in Maildir folders under `./var/mail/<user>/`.
 *
 * It differs from the library's defaults (what `new Mta()` gets) in one setting, made
 * here so that it shows: `localRecipientMaps` is empty, so every local part of
 * `mydestination` is accepted (and gets its own Maildir), where the library's default
 * accepts only the host's accounts and aliases, as Postfix does. That suits a catch-all
 * for an application under development on the loopback interface; a server that others
 * can reach should keep the library's default or list its users.
 *
 * @module
 */

import type { MtaConfig } from './mta-config.js';

/**
 * The config of `postern serve` without `--config`.
 *
 * @example
 * ```ts
 * const mta = new Mta(EMBEDDED_CONFIG); // what `npm start` runs
 * ```
 */
export const EMBEDDED_CONFIG: MtaConfig = Object.freeze({
  // Every local part is a recipient: a catch-all for development on 127.0.0.1.
  localRecipientMaps: '',
});
