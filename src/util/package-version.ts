/**
 * POSTERN_VERSION: the version of this package, as its package.json says, for
 * `postern --version`, the `daemon started` log line and the capture server's info.
 *
 * Postfix counterpart: mail_version.h (`MAIL_VERSION_NUMBER`), which `postconf
 * mail_version` and the master's start-up line print.
 *
 * The bundler reads package.json when it builds dist/ (and the test runner when it
 * loads the sources), so the number lives in one place and is not read from disk at
 * run time.
 *
 * @module
 */

import pkg from '../../package.json' with { type: 'json' };

/**
 * The package version (`0.1.0`).
 *
 * @example
 * ```ts
 * logger.info(`daemon started -- version ${POSTERN_VERSION}`);
 * ```
 */
export const POSTERN_VERSION: string = pkg.version;
