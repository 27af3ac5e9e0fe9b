/**
 * errorMessage(): the text of whatever was thrown, for a log line, a reply's reason or
 * an error of Postern's own that wraps it; asError(): whatever was thrown, as an Error
 * to keep or hand on.
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

/**
 * `err` itself when it is an Error, else an Error whose message is the value as text.
 *
 * @example
 * ```ts
 * asError('timeout').message; // 'timeout'
 * ```
 */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
