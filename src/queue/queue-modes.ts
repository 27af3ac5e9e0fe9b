/**
 * The owners and modes of everything in a queue directory, in one table.
 *
 * Postfix counterpart: postfix-files, the list `postfix set-permissions` and
 * `postfix check` work from. Everything belongs to the uid the server runs as (root,
 * or a dedicated user); the modes let local users do exactly two things: drop a file
 * in the maildrop, and ask a running server for the queue listing.
 *
 * ```
 * queue directory        0711  others may pass through, to reach maildrop/ and public/
 *   incoming/ active/ deferred/ hold/ corrupt/ tmp/   0700, files 0600
 *   maildrop/           3733  sticky, set-group-id, writable and not readable by others
 *     corrupt/          0700
 *   private/            0700  control.sock (every queue operation): the owner only
 *   public/             0711  showq.sock 0666 (the listing only): every local user
 * ```
 *
 * Does not do: apply the table (securePath and the callers do, at start-up).
 *
 * @module
 */

import type { PathSpec } from '../util/secure-path.js';

/** The queue directory: others may traverse it, nothing more. */
export const QUEUE_DIRECTORY_SPEC: PathSpec = {
  type: 'directory',
  mode: 0o711,
  optional: 0o044,
  purpose: 'local users pass through it to the maildrop and public/',
};

/** A queue state directory (incoming/, deferred/, ...) and tmp/. */
export const STATE_DIRECTORY_SPEC: PathSpec = {
  type: 'directory',
  mode: 0o700,
  purpose: 'queue files are for the queue owner only',
};

/** Queue files: the owner reads and writes them, nobody else. */
export const QUEUE_FILE_MODE = 0o600;

/**
 * The maildrop: any local user may create a file (write and search for others), none
 * may list it (no read), and the sticky bit keeps each file removable only by its
 * owner and the queue owner. Set-group-id gives every file the queue owner's group,
 * so a server that does not run as root can read what users drop (mode 0640).
 */
export const MAILDROP_SPEC: PathSpec = {
  type: 'directory',
  mode: 0o3733,
  purpose: 'every local user may drop mail in it, none may list or remove what others dropped',
};

/** Mode of a maildrop file: the submitter's, readable by the queue owner's group. */
export const MAILDROP_FILE_MODE = 0o640;

/** Where unreadable maildrop files go. */
export const MAILDROP_CORRUPT_SPEC: PathSpec = {
  type: 'directory',
  mode: 0o700,
  purpose: 'unreadable maildrop files are kept for the queue owner only',
};

/** private/: sockets only the queue owner may use. */
export const PRIVATE_DIRECTORY_SPEC: PathSpec = {
  type: 'directory',
  mode: 0o700,
  purpose: 'the control socket is for the queue owner only',
};

/** public/: sockets every local user may use. */
export const PUBLIC_DIRECTORY_SPEC: PathSpec = {
  type: 'directory',
  mode: 0o711,
  purpose: 'local users reach the queue listing socket through it',
};
