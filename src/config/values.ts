/**
 * Parsers for Postfix-style parameter values: time with units (`300s`, `4h`, `5d`),
 * sizes, booleans (`yes`/`no`), lists (comma or whitespace separated).
 *
 * Postfix counterpart: conv_time.c, mail_conf_bool.c, mystrtok(). A JSON config may also
 * give the native JSON type (a number of seconds, `true`, an array).
 *
 * @module
 */

import { ConfigError } from '../errors.js';

const TIME_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * A duration in milliseconds. Strings take Postfix's units (`s` default, `m`, `h`, `d`,
 * `w`) and `ms`; a number is seconds, as in Postfix.
 */
export function parseTime(value: unknown, key: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value * 1000;
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|[smhdw])?\s*$/.exec(value);
    if (m) {
      const n = Number(m[1]);
      if (m[2] === 'ms') return n;
      return n * 1000 * (TIME_UNITS[m[2] ?? 's'] ?? 1);
    }
  }
  throw new ConfigError(
    `${key}: expected a time such as "300s", "4h" or "5d" (or a number of seconds), got ${JSON.stringify(value)}`,
    key,
  );
}

/** A non-negative integer (bytes, counts). */
export function parseInteger(value: unknown, key: string, min = 0): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n === 'number' && Number.isInteger(n) && n >= min) return n;
  throw new ConfigError(
    `${key}: expected a whole number >= ${min}, got ${JSON.stringify(value)}`,
    key,
  );
}

/** `true`/`false` or Postfix's `yes`/`no`. */
export function parseBoolean(value: unknown, key: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'yes') return true;
  if (value === 'no') return false;
  throw new ConfigError(
    `${key}: expected true/false (or "yes"/"no"), got ${JSON.stringify(value)}`,
    key,
  );
}

/** An array of strings, or one string split on commas and whitespace (Postfix lists). */
export function parseList(value: unknown, key: string): string[] {
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    return (value as string[]).map((v) => v.trim()).filter((v) => v !== '');
  }
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((v) => v !== '');
  throw new ConfigError(
    `${key}: expected a list of strings (an array or "a, b, c"), got ${JSON.stringify(value)}`,
    key,
  );
}

/** A string. */
export function parseString(value: unknown, key: string): string {
  if (typeof value === 'string') return value;
  throw new ConfigError(`${key}: expected a string, got ${JSON.stringify(value)}`, key);
}

/** One of a fixed set of words. */
export function parseEnum<T extends string>(value: unknown, key: string, choices: readonly T[]): T {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value))
    return value as T;
  throw new ConfigError(
    `${key}: expected one of ${choices.map((c) => `"${c}"`).join(', ')}, got ${JSON.stringify(value)}`,
    key,
  );
}
