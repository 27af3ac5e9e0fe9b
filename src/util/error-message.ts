/**
 * errorMessage(): the text of whatever was thrown, for a log line, a reply's reason or
 * an error of Postern's own that wraps it.
 *
 * Postfix counterpart: none as such (C has no exceptions); the place of `%m` in
 * msg_warn(3), which prints the system's text for the last error.
 *
 * Does not: add the error's code or stack, or make the text printable (callers that
 * send it to a peer or a log do that).
 *
 * @module
 */

/**
 * The `message` of an Error (or of an object that has one), else the value as text.
 *
 * @example
 * ```ts
 * errorMessage(new Error('disk full')); // 'disk full'
 * errorMessage('timeout'); // 'timeout'
 * ```
 */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { message?: unknown }).message === 'string'
  )
    return (err as { message: string }).message;
  return String(err);
}
