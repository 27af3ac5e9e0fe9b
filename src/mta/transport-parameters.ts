/**
 * Per-transport parameter overrides: a `transports` entry such as
 * `{ type: 'smtp', smtpTlsSecurityLevel: 'encrypt', smtpConnectTimeout: '10s' }` is
 * Postern's master.cf `-o smtp_tls_security_level=encrypt`.
 *
 * @module
 */

import { isParameterName, type Parameters, resolveParameters } from '../config/parameters.js';
import type { TransportConfig } from '../deliver/types.js';
import { ConfigError } from '../errors.js';

const TRANSPORT_KEYS = new Set([
  'type',
  'destinationConcurrencyLimit',
  'destinationRecipientLimit',
]);

/** `params` with the transport's overrides applied; unknown keys are refused by name. */
export function transportParameters(
  params: Parameters,
  transport: TransportConfig,
  key: string,
): Parameters {
  const overrides: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(transport)) {
    if (TRANSPORT_KEYS.has(k)) continue;
    if (!isParameterName(k)) {
      throw new ConfigError(
        `${key}: unknown setting "${k}"; a transport takes "type", the destination limits and main parameter overrides (e.g. "smtpTlsSecurityLevel")`,
        `${key}.${k}`,
      );
    }
    overrides[k] = v;
  }
  if (Object.keys(overrides).length === 0) return params;
  // Parse the raw override values the same way main.cf values are parsed.
  const parsed = resolveParameters({
    myhostname: params.myhostname,
    ...overrides,
  }) as unknown as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...params };
  for (const k of Object.keys(overrides)) merged[k] = parsed[k];
  return Object.freeze(merged) as unknown as Parameters;
}
