/**
 * Per-transport parameter overrides: a `transports` entry such as
 * `{ type: 'smtp', smtpTlsSecurityLevel: 'encrypt', smtpConnectTimeout: '10s' }` is
 * Postern's master.cf `-o smtp_tls_security_level=encrypt`.
 *
 * @module
 */

import type { TransportConfig } from '../deliver/types.js';
import { ConfigError } from '../errors.js';
import { isParameterName, MAIN_PARAMETERS, type MainParameters } from './main-parameters.js';

const TRANSPORT_KEYS = new Set([
  'type',
  'destinationConcurrencyLimit',
  'destinationRecipientLimit',
]);

/** `params` with the transport's overrides applied; unknown keys are refused by name. */
export function transportParameters(
  params: MainParameters,
  transport: TransportConfig,
  key: string,
): MainParameters {
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
  return MAIN_PARAMETERS.override(params, overrides);
}
