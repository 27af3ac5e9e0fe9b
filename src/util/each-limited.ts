/**
 * eachLimited: runs an async function over a list with at most N calls in flight, so
 * a scan of a large queue directory never opens thousands of files at once.
 *
 * @module
 */

/** Runs `fn` over `items`, at most `limit` at a time; rejects with the first failure. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
