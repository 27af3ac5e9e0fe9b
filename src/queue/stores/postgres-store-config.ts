/**
 * The `"queueStore": { "type": "postgres", ... }` configuration: its shape, its
 * validation, and turning it into PostgresQueueStore options.
 *
 * Postfix counterpart: none (Postfix's queue is a directory).
 *
 * Does not do: load `pg` or connect (that happens at `open()`), so a config can be
 * checked on a machine without the database.
 *
 * @module
 */

import { parseInteger, parseString } from '../../config/values.js';
import { ConfigError } from '../../errors.js';
import type { PostgresQueueStoreOptions } from './postgres-store-options.js';

/**
 * `{ "type": "postgres", "url": "postgres://..." }` and its optional settings: the
 * PostgresQueueStore options that a JSON config can hold.
 *
 * @example
 * ```ts
 * const queueStore: PostgresQueueStoreConfig = { type: 'postgres', url: 'postgres://postern@db.internal/mail', poolSize: 20 };
 * ```
 */
export interface PostgresQueueStoreConfig
  extends Pick<
    PostgresQueueStoreOptions,
    | 'url'
    | 'schema'
    | 'poolSize'
    | 'chunkSize'
    | 'listen'
    | 'pollMs'
    | 'heartbeatMs'
    | 'nodeTimeoutMs'
    | 'migrate'
  > {
  /** Selects this store in `queueStore`. */
  readonly type: 'postgres';
}

const INTEGER_KEYS = ['poolSize', 'chunkSize', 'pollMs', 'heartbeatMs', 'nodeTimeoutMs'] as const;
const BOOLEAN_KEYS = ['listen', 'migrate'] as const;
const KNOWN = new Set<string>(['type', 'url', 'schema', ...INTEGER_KEYS, ...BOOLEAN_KEYS]);

/** Validates a postgres queueStore object; throws ConfigError naming the bad key. */
export function parsePostgresStoreConfig(value: object): PostgresQueueStoreConfig {
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KNOWN.has(key)) {
      throw new ConfigError(
        `queueStore.${key}: unknown setting for the postgres store (known: ${[...KNOWN].join(', ')})`,
        `queueStore.${key}`,
      );
    }
  }
  if (raw.url === undefined) {
    throw new ConfigError(
      'queueStore.url: the postgres store needs "url": "postgres://user:password@host:5432/database"',
      'queueStore.url',
    );
  }
  const url = parseString(raw.url, 'queueStore.url');
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new ConfigError(
      'queueStore.url: expected a URL starting with postgres:// or postgresql://',
      'queueStore.url',
    );
  }
  const out: Record<string, unknown> = { type: 'postgres', url };
  if (raw.schema !== undefined) out.schema = parseString(raw.schema, 'queueStore.schema');
  for (const key of INTEGER_KEYS) {
    if (raw[key] !== undefined) out[key] = parseInteger(raw[key], `queueStore.${key}`, 1);
  }
  for (const key of BOOLEAN_KEYS) {
    if (raw[key] === undefined) continue;
    if (typeof raw[key] !== 'boolean')
      throw new ConfigError(`queueStore.${key}: expected true or false`, `queueStore.${key}`);
    out[key] = raw[key];
  }
  return out as unknown as PostgresQueueStoreConfig;
}

/** The store options for a validated config. */
export function postgresStoreOptions(
  config: PostgresQueueStoreConfig,
  extra: Pick<PostgresQueueStoreOptions, 'clock' | 'logger' | 'node'>,
): PostgresQueueStoreOptions {
  const { type: _type, ...rest } = config;
  return { ...rest, ...extra };
}
