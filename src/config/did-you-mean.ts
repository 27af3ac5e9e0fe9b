/**
 * "Did you mean" for a misspelt config key: the known name nearest to the given one, by
 * the number of single-letter edits (insert, delete, replace, swap two neighbours)
 * between them, ignoring case, when it is near enough to be a likely typo
 * (`smtpdBaner` → `smtpdBanner`, `messagesizelimit` → `messageSizeLimit`, a Postfix name
 * such as `message_size_limit` → `messageSizeLimit`).
 *
 * Postfix counterpart: none; postconf(1) warns `unused parameter` and leaves the guess
 * to the operator.
 *
 * Does not: guess for names that are far from every known one.
 *
 * @module
 */

/**
 * The name in `known` that `given` most likely misspells, or undefined.
 *
 * @example
 * ```ts
 * didYouMean('smtpdBaner', ['smtpdBanner', 'smtpdTimeout']); // 'smtpdBanner'
 * ```
 */
export function didYouMean(given: string, known: Iterable<string>): string | undefined {
  const word = camelOf(given).toLowerCase();
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 4)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const name of known) {
    const d = distance(word, name.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** A Postfix name (`message_size_limit`) in camelCase; other names as they are. */
function camelOf(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Optimal string alignment distance between `a` and `b`; any value of `stop` or more
 * means "too far" (the rows stop early).
 */
function distance(a: string, b: string, stop: number): number {
  if (Math.abs(a.length - b.length) >= stop) return stop;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(
        (previous[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, (before[j - 2] as number) + 1);
      row.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin >= stop) return stop;
    before = previous;
    previous = row;
  }
  return previous[b.length] as number;
}
