/**
 * MTA-STS texts: the policy file a domain serves over HTTPS, the `_mta-sts` TXT record
 * that announces it, and the test of an MX host name against the policy's `mx` patterns.
 *
 * Postfix counterpart: none built in; operators add postfix-mta-sts-resolver behind
 * `smtp_tls_policy_maps`. This module is the parsing half of that daemon.
 *
 * Does not: fetch anything (mta-sts-fetcher.ts), cache (mta-sts-cache.ts), or apply a
 * policy to a delivery (smtp-client.ts).
 *
 * SECURITY: both texts come from the network. Every field is checked against the RFC's
 * grammar, sizes are bounded, control characters refused, and an error names what is
 * wrong (made printable) without echoing more than a short excerpt.
 *
 * STANDARDS: RFC 8461 sections 3.1 (TXT record), 3.2 (policy), 4.1 (MX host matching).
 *
 * @module
 */

import { PosternError } from '../../errors.js';
import { printable } from '../../smtp-reply.js';

/**
 * What a policy asks of senders: `enforce` (only matching MX hosts, only over verified
 * TLS), `testing` (deliver as usual, report failures), `none` (the domain withdrew its
 * policy).
 *
 * @example
 * ```ts
 * const mode: MtaStsMode = 'enforce';
 * ```
 */
export type MtaStsMode = 'enforce' | 'testing' | 'none';

/**
 * A parsed policy file.
 *
 * @example
 * ```ts
 * const policy: MtaStsPolicy = { version: 'STSv1', mode: 'enforce', mx: ['*.mail.example.com'], maxAge: 604800 };
 * ```
 */
export interface MtaStsPolicy {
  /** Always `STSv1`. */
  readonly version: 'STSv1';
  /** What the domain asks for. */
  readonly mode: MtaStsMode;
  /** MX host patterns, lower case: `mx.example.com` or `*.example.com`; empty only for mode `none`. */
  readonly mx: readonly string[];
  /** How long the policy may be cached, in seconds (at most 31557600). */
  readonly maxAge: number;
}

/**
 * The `_mta-sts.<domain>` TXT record.
 *
 * @example
 * ```ts
 * const record: MtaStsRecord = parseMtaStsRecord('v=STSv1; id=20240101T000000;');
 * if (record.id !== cachedId) refetch();
 * ```
 */
export interface MtaStsRecord {
  /** The policy instance id: it changes whenever the policy file changes. */
  readonly id: string;
}

/**
 * A policy text, TXT record or fetch that does not meet RFC 8461. The message says what
 * is wrong; the sender then acts as if the domain had no (new) policy.
 *
 * @example
 * ```ts
 * try {
 *   parseMtaStsPolicy(body);
 * } catch (err) {
 *   if (err instanceof MtaStsError) log.warning(undefined, err.message);
 * }
 * ```
 */
export class MtaStsError extends PosternError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('POSTERN_ERR_MTA_STS', message, options);
  }
}

/** RFC 8461 section 3.2: `max_age` is at most one year (31557600 seconds). */
export const MTA_STS_MAX_AGE_LIMIT = 31_557_600;

/** Policy bodies larger than this are refused (RFC 8461 section 3.3 suggests 64 KiB). */
export const MTA_STS_POLICY_MAX_BYTES = 65_536;

// sts-policy-ext-name / sts-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
const FIELD_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
// A field value: visible ASCII, UTF-8 beyond it, and inner blanks; never a control.
const FIELD_VALUE = /^[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?$/;
// sts-ext-value: %x21-3A / %x3C / %x3E-7E (no "=", ";", blank or control).
const TXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;
const TXT_ID = /^[A-Za-z0-9]{1,32}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function excerpt(text: string): string {
  const p = printable(text);
  return p.length > 60 ? `${p.slice(0, 60)}...` : p;
}

/**
 * Whether `name` is a DNS host name of letters, digits and hyphens (RFC 5321 `Domain`),
 * at most 253 characters, with at least two labels.
 *
 * @example
 * ```ts
 * isMtaStsHostName('mx1.example.com'); // true
 * isMtaStsHostName('localhost'); // false
 * ```
 */
export function isMtaStsHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.toLowerCase().split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l));
}

/**
 * Parses a policy file body (RFC 8461 section 3.2): `name: value` fields, one per line,
 * lines ending in CRLF or LF. `version: STSv1`, `mode` and `max_age` are required once
 * (a repeated one keeps its first value), `mx` at least once unless the mode is `none`;
 * unknown fields are ignored.
 *
 * @throws MtaStsError naming the offending line or field.
 *
 * @example
 * ```ts
 * const policy = parseMtaStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmax_age: 86400\r\n');
 * policy.mode; // 'enforce'
 * ```
 */
export function parseMtaStsPolicy(text: string): MtaStsPolicy {
  if (Buffer.byteLength(text, 'utf8') > MTA_STS_POLICY_MAX_BYTES) {
    throw new MtaStsError(`policy is larger than ${MTA_STS_POLICY_MAX_BYTES} bytes`);
  }
  const first = new Map<string, string>();
  const mx: string[] = [];
  // sts-policy-term is LF or CRLF; a CR anywhere else is not allowed.
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (/^[ \t]*$/.test(line)) continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) {
      throw new MtaStsError(
        `policy line ${i + 1} is not a "name: value" field: "${excerpt(line)}"`,
      );
    }
    if (name === 'mx') mx.push(value);
    else if (!first.has(name)) first.set(name, value);
  }

  const version = first.get('version');
  if (version !== 'STSv1') {
    throw new MtaStsError(
      version === undefined
        ? 'policy has no "version" field'
        : `policy version "${excerpt(version)}" is not STSv1`,
    );
  }
  const mode = first.get('mode');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') {
    throw new MtaStsError(
      mode === undefined
        ? 'policy has no "mode" field'
        : `policy mode "${excerpt(mode)}" is not enforce, testing or none`,
    );
  }
  const maxAgeText = first.get('max_age');
  if (maxAgeText === undefined) throw new MtaStsError('policy has no "max_age" field');
  // sts-policy-max-age-value = 1*10(DIGIT)
  if (!/^[0-9]{1,10}$/.test(maxAgeText) || Number(maxAgeText) > MTA_STS_MAX_AGE_LIMIT) {
    throw new MtaStsError(
      `policy max_age "${excerpt(maxAgeText)}" is not a number of seconds from 0 to ${MTA_STS_MAX_AGE_LIMIT}`,
    );
  }
  const patterns: string[] = [];
  for (const value of mx) {
    const pattern = value.toLowerCase().replace(/\.$/, '');
    const host = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
    if (!isMtaStsHostName(host)) {
      throw new MtaStsError(
        `policy mx "${excerpt(value)}" is neither a host name nor "*." and a domain`,
      );
    }
    if (!patterns.includes(pattern)) patterns.push(pattern);
  }
  if (mode !== 'none' && patterns.length === 0) {
    throw new MtaStsError(`policy in mode ${mode} has no "mx" field`);
  }
  return Object.freeze({
    version: 'STSv1',
    mode,
    mx: Object.freeze(patterns),
    maxAge: Number(maxAgeText),
  });
}

/**
 * Parses one TXT record (its strings already joined): `v=STSv1; id=...;` with optional
 * extension fields (RFC 8461 section 3.1).
 *
 * @throws MtaStsError naming what is wrong.
 *
 * @example
 * ```ts
 * parseMtaStsRecord('v=STSv1; id=20160831085700Z;').id; // '20160831085700Z'
 * ```
 */
export function parseMtaStsRecord(text: string): MtaStsRecord {
  if (text.length > 4096) throw new MtaStsError('TXT record is longer than 4096 characters');
  const parts = text.split(';').map((p) => p.replace(/^[ \t]+|[ \t]+$/g, ''));
  // A trailing ";" leaves one empty last part; any other empty part is a syntax error.
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts[0] !== 'v=STSv1') {
    throw new MtaStsError(`TXT record "${excerpt(text)}" does not start with "v=STSv1;"`);
  }
  let id: string | undefined;
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? '' : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (!FIELD_NAME.test(name) || !TXT_VALUE.test(value)) {
      throw new MtaStsError(
        `TXT record field "${excerpt(part)}" is not "name=value" (record "${excerpt(text)}")`,
      );
    }
    if (name === 'id' && id === undefined) {
      if (!TXT_ID.test(value)) {
        throw new MtaStsError(`TXT record id "${excerpt(value)}" is not 1 to 32 letters or digits`);
      }
      id = value;
    }
  }
  if (id === undefined) throw new MtaStsError(`TXT record "${excerpt(text)}" has no id`);
  return Object.freeze({ id });
}

/**
 * Picks the MTA-STS record out of a TXT answer (each record a list of strings, joined
 * without spaces): records not starting with `v=STSv1;` are ignored; `undefined` when
 * none is left. More than one, or one that does not parse, is an error — the domain then
 * has no usable record (RFC 8461 section 3.1).
 *
 * @throws MtaStsError when the records are ambiguous or malformed.
 *
 * @example
 * ```ts
 * const record = selectMtaStsRecord(await resolver.resolveTxt('_mta-sts.example.com'));
 * if (record) console.log(record.id);
 * ```
 */
export function selectMtaStsRecord(
  records: readonly (readonly string[])[],
): MtaStsRecord | undefined {
  const sts = records.map((r) => r.join('')).filter((t) => /^v=STSv1[ \t]*;/.test(t));
  if (sts.length === 0) return undefined;
  if (sts.length > 1) throw new MtaStsError(`${sts.length} TXT records start with "v=STSv1;"`);
  return parseMtaStsRecord(sts[0]!);
}

/**
 * Whether an MX host name matches one of a policy's patterns (RFC 8461 section 4.1):
 * equal ignoring case and a trailing dot, or `*.example.com` with exactly one label in
 * place of the `*` (`mail.example.com`, not `example.com` nor `a.b.example.com`).
 *
 * @example
 * ```ts
 * mtaStsMxMatches(['*.example.com'], 'mx1.example.com'); // true
 * mtaStsMxMatches(['*.example.com'], 'a.mx1.example.com'); // false
 * ```
 */
export function mtaStsMxMatches(patterns: readonly string[], host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  for (const raw of patterns) {
    const pattern = raw.toLowerCase().replace(/\.$/, '');
    if (pattern.startsWith('*.')) {
      const dot = name.indexOf('.');
      if (dot > 0 && name.slice(dot) === pattern.slice(1)) return true;
    } else if (pattern === name) {
      return true;
    }
  }
  return false;
}
