// KEY=VALUE command-line options (--set) as `postern serve` config parameters.

/**
 * The parameters `list` gives, for option `--flag`; a VALUE that parses as JSON is taken
 * as such, anything else as a string. Throws on an item without `=`.
 */
export function paramsOf(flag, list) {
  return Object.fromEntries(
    list.map((kv) => {
      const at = kv.indexOf('=');
      if (at < 1) throw new Error(`--${flag} ${kv}: give KEY=VALUE`);
      const value = kv.slice(at + 1);
      try {
        return [kv.slice(0, at), JSON.parse(value)];
      } catch {
        return [kv.slice(0, at), value];
      }
    }),
  );
}
