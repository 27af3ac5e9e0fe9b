/**
 * The `dkimSigning` and `dkimVerification` keys of the Mta's config: validated here,
 * keys read and checked when the Mta is built.
 *
 * Postfix counterpart: OpenDKIM's KeyTable/SigningTable (`domain selector keyfile`)
 * and InternalHosts (whose mail is signed), OpenDMARC's AuthservID and RejectFailures.
 *
 * @module
 */

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { toAsciiDomain } from '../address/domain.js';
import { builtin } from '../builtin.js';
import { ConfigError } from '../errors.js';
import { errorMessage } from '../util/error-message.js';

/**
 * One signing key: mail from a trusted client whose From: address is in `domain` is
 * signed with it (relaxed/relaxed; rsa-sha256 for an RSA key, ed25519-sha256 for an
 * Ed25519 key).
 *
 * @example
 * ```ts
 * const key: DkimSigningKey = { domain: 'example.com', selector: 's2026', privateKeyFile: '/etc/postern/dkim/s2026.key' };
 * const mta = new Mta({ dkimSigning: [key] });
 * ```
 */
export interface DkimSigningKey {
  /** The signing domain (`d=`), matched against the From: address's domain. */
  readonly domain: string;
  /** The selector (`s=`): the key is published at `<selector>._domainkey.<domain>`. */
  readonly selector: string;
  /** A PEM private key file (PKCS#1 or PKCS#8; RSA of at least 1024 bits, or Ed25519). */
  readonly privateKeyFile?: string;
  /** The PEM key itself (a code config), instead of `privateKeyFile`. */
  readonly privateKey?: string;
  /** Also sign mail from subdomains of `domain` (d= stays `domain`; DMARC's relaxed alignment accepts it). @default false */
  readonly subdomains?: boolean;
  /** Header fields to sign. @default mailauth's list (From, Sender, Reply-To, Subject, Date, Message-ID, To, Cc, MIME headers, ...) */
  readonly headers?: readonly string[];
}

/**
 * Inbound authentication of mail from untrusted clients: DKIM, SPF, DMARC and ARC
 * results in an `Authentication-Results` header.
 *
 * @example
 * ```ts
 * const mta = new Mta({ dkimVerification: { dmarcPolicy: 'enforce' } satisfies DkimVerificationConfig });
 * ```
 */
export interface DkimVerificationConfig {
  /** The authserv-id of the Authentication-Results field. @default `myhostname` */
  readonly authservId?: string;
  /**
   * What a DMARC failure does: `none` only records it; `enforce` applies the sender
   * domain's policy — `reject` → 550 5.7.1, `quarantine` → the message is held.
   * @default 'none'
   */
  readonly dmarcPolicy?: 'none' | 'enforce';
}

/** A signing key after its file was read. */
export interface LoadedSigningKey {
  readonly domain: string;
  readonly selector: string;
  readonly subdomains: boolean;
  readonly privateKey: string;
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  readonly headers?: string[];
}

/**
 * Checks the shape of `dkimSigning` (an array of keys); keys are read by loadSigningKeys().
 *
 * @example
 * ```ts
 * parseDkimSigning([{ domain: 'example.com', selector: 's1', privateKeyFile: 'k.pem' }]);
 * ```
 */
export function parseDkimSigning(value: unknown): DkimSigningKey[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value))
    throw new ConfigError(
      'dkimSigning: expected an array such as [{ "domain": "example.com", "selector": "s1", "privateKeyFile": "/etc/postern/dkim/s1.key" }]',
      'dkimSigning',
    );
  return value.map((k, i) => {
    const key = `dkimSigning[${i}]`;
    if (typeof k !== 'object' || k === null)
      throw new ConfigError(
        `${key}: expected an object with domain, selector, privateKeyFile`,
        key,
      );
    const o = k as Record<string, unknown>;
    for (const name of Object.keys(o)) {
      if (
        !['domain', 'selector', 'privateKeyFile', 'privateKey', 'subdomains', 'headers'].includes(
          name,
        )
      )
        throw new ConfigError(
          `${key}: unknown key "${name}"; a signing key takes domain, selector, privateKeyFile (or privateKey), subdomains, headers`,
          `${key}.${name}`,
        );
    }
    const domain = typeof o.domain === 'string' ? toAsciiDomain(o.domain) : undefined;
    if (!domain || domain.startsWith('['))
      throw new ConfigError(
        `${key}.domain: expected a domain name such as "example.com"`,
        `${key}.domain`,
      );
    if (typeof o.selector !== 'string' || !/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(o.selector))
      throw new ConfigError(
        `${key}.selector: expected a selector such as "s2026" (letters, digits, "-", ".")`,
        `${key}.selector`,
      );
    if ((o.privateKeyFile === undefined) === (o.privateKey === undefined))
      throw new ConfigError(
        `${key}: give privateKeyFile (a PEM file) or privateKey, one of them`,
        key,
      );
    for (const name of ['privateKeyFile', 'privateKey'] as const)
      if (o[name] !== undefined && typeof o[name] !== 'string')
        throw new ConfigError(`${key}.${name}: expected a string`, `${key}.${name}`);
    if (o.subdomains !== undefined && typeof o.subdomains !== 'boolean')
      throw new ConfigError(`${key}.subdomains: expected true or false`, `${key}.subdomains`);
    if (
      o.headers !== undefined &&
      (!Array.isArray(o.headers) ||
        !o.headers.every((h) => typeof h === 'string' && /^[\x21-\x39\x3b-\x7e]+$/.test(h)) ||
        !o.headers.some((h) => (h as string).toLowerCase() === 'from'))
    )
      throw new ConfigError(
        `${key}.headers: expected header field names, From among them (RFC 6376 section 5.4)`,
        `${key}.headers`,
      );
    return {
      domain,
      selector: o.selector,
      ...(o.privateKeyFile !== undefined ? { privateKeyFile: o.privateKeyFile as string } : {}),
      ...(o.privateKey !== undefined ? { privateKey: o.privateKey as string } : {}),
      ...(o.subdomains !== undefined ? { subdomains: o.subdomains } : {}),
      ...(o.headers !== undefined ? { headers: o.headers as string[] } : {}),
    };
  });
}

/**
 * Checks the shape of `dkimVerification` (`true` or an object).
 *
 * @example
 * ```ts
 * parseDkimVerification({ dmarcPolicy: 'enforce' });
 * ```
 */
export function parseDkimVerification(value: unknown): DkimVerificationConfig | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(
      'dkimVerification: expected true or an object such as { "dmarcPolicy": "enforce" }',
      'dkimVerification',
    );
  const o = value as Record<string, unknown>;
  for (const name of Object.keys(o))
    if (!['authservId', 'dmarcPolicy'].includes(name))
      throw new ConfigError(
        `dkimVerification: unknown key "${name}"; it takes authservId and dmarcPolicy`,
        `dkimVerification.${name}`,
      );
  if (
    o.authservId !== undefined &&
    (typeof o.authservId !== 'string' || !/^[\x21-\x7e]+$/.test(o.authservId))
  )
    throw new ConfigError(
      'dkimVerification.authservId: expected a host name such as "mx.example.com"',
      'dkimVerification.authservId',
    );
  if (o.dmarcPolicy !== undefined && o.dmarcPolicy !== 'none' && o.dmarcPolicy !== 'enforce')
    throw new ConfigError(
      'dkimVerification.dmarcPolicy: expected "none" or "enforce"',
      'dkimVerification.dmarcPolicy',
    );
  return {
    ...(o.authservId !== undefined ? { authservId: o.authservId as string } : {}),
    ...(o.dmarcPolicy !== undefined ? { dmarcPolicy: o.dmarcPolicy as 'none' | 'enforce' } : {}),
  };
}

/**
 * Reads each key and finds its algorithm. Throws ConfigError naming the key that cannot
 * be read or used.
 *
 * @example
 * ```ts
 * const keys = loadSigningKeys(parseDkimSigning(config.dkimSigning) ?? []);
 * ```
 */
export function loadSigningKeys(keys: readonly DkimSigningKey[]): LoadedSigningKey[] {
  return keys.map((k, i) => {
    const where = `dkimSigning[${i}]${k.privateKeyFile !== undefined ? '.privateKeyFile' : '.privateKey'}`;
    let pem: string;
    try {
      pem = k.privateKey ?? readFileSync(k.privateKeyFile!, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `${where}: cannot read ${k.privateKeyFile}: ${errorMessage(err)}; give a PEM file readable by this process`,
        where,
      );
    }
    let key: KeyObject;
    try {
      key = builtin('crypto').createPrivateKey(pem);
    } catch (err) {
      throw new ConfigError(
        `${where}: not a PEM private key (${errorMessage(err)}); make one with \`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048\` or \`-algorithm ed25519\``,
        where,
      );
    }
    let algorithm: LoadedSigningKey['algorithm'];
    if (key.asymmetricKeyType === 'rsa') {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < 1024)
        throw new ConfigError(
          `${where}: a ${bits}-bit RSA key is too short for DKIM (RFC 8301: at least 1024, 2048 recommended)`,
          where,
        );
      algorithm = 'rsa-sha256';
    } else if (key.asymmetricKeyType === 'ed25519') {
      algorithm = 'ed25519-sha256';
    } else {
      throw new ConfigError(
        `${where}: an ${key.asymmetricKeyType?.toUpperCase() ?? 'unknown'} key cannot sign DKIM; use an RSA or Ed25519 key`,
        where,
      );
    }
    return {
      domain: k.domain,
      selector: k.selector,
      subdomains: k.subdomains ?? false,
      // PKCS#8 PEM, which mailauth reads for both algorithms.
      privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      algorithm,
      ...(k.headers ? { headers: [...k.headers] } : {}),
    };
  });
}
