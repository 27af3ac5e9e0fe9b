/**
 * Loads `mailauth`, the DKIM/SPF/DMARC/ARC library, only when `dkimSigning` or
 * `dkimVerification` is configured: it is an optional peer dependency, as `pg` is for
 * the PostgreSQL queue.
 *
 * Postfix counterpart: none — Postfix leaves DKIM and DMARC to Milters (OpenDKIM,
 * OpenDMARC). Postern uses the library Node MTAs use (ZoneMTA, WildDuck) rather than
 * its own cryptography and policy code.
 *
 * @module
 */

import type { Readable } from 'node:stream';
import { ConfigError } from '../errors.js';

/** mailauth's resolver: `dns.promises.resolve(name, rrtype)`'s shape. */
export type MailauthResolver = (name: string, rrtype: string) => Promise<unknown[]>;

/** The part of mailauth's authenticate() result Postern reads. */
export interface MailauthResult {
  readonly headers: string;
  readonly dkim?: {
    readonly results?: readonly { readonly status?: { readonly result?: string } }[];
  };
  readonly spf?: { readonly status?: { readonly result?: string } } | false;
  readonly dmarc?:
    | {
        readonly domain?: string;
        readonly policy?: string;
        readonly p?: string;
        readonly sp?: string;
        readonly pct?: number;
        readonly status?: { readonly result?: string };
      }
    | false;
  readonly arc?: { readonly status?: { readonly result?: string } } | false;
}

/** The functions of mailauth Postern calls. */
export interface Mailauth {
  dkimSign(
    input: Readable,
    options: {
      canonicalization: string;
      algorithm: string;
      headerList?: string[];
      signTime?: Date;
      signatureData: {
        signingDomain: string;
        selector: string;
        privateKey: string;
        algorithm: string;
        canonicalization: string;
      }[];
    },
  ): Promise<{ signatures: string; errors?: readonly unknown[] | null }>;
  authenticate(
    input: Readable,
    options: {
      ip?: string;
      helo?: string;
      sender?: string;
      mta: string;
      resolver: MailauthResolver;
      disableBimi: boolean;
    },
  ): Promise<MailauthResult>;
}

let loaded: Promise<Mailauth> | undefined;

/**
 * Imports mailauth once; a ConfigError says how to install it when it is missing.
 *
 * @example
 * ```ts
 * const { dkimSign } = await loadMailauth('dkimSigning');
 * ```
 */
export function loadMailauth(key: string): Promise<Mailauth> {
  loaded ??= import('mailauth').then(
    (mod) => ((mod as { default?: Mailauth }).default ?? mod) as Mailauth,
    (err: unknown) => {
      loaded = undefined;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
        throw new ConfigError(
          `${key} needs the "mailauth" package: run \`npm install mailauth\` in your project`,
          key,
        );
      }
      throw err;
    },
  );
  return loaded;
}
