/**
 * MessageAuthentication: Cleanup's commit stage for DKIM — mail from trusted clients
 * whose From: domain has a key is signed; mail from other clients gets an
 * `Authentication-Results` header (DKIM, SPF, DMARC, ARC) and, if configured, the
 * sender domain's DMARC policy applied.
 *
 * Postfix counterpart: OpenDKIM and OpenDMARC as Milters of smtpd and cleanup
 * (`smtpd_milters`, `non_smtpd_milters`): OpenDKIM signs for InternalHosts and
 * authenticated clients, verifies for the rest, and logs `DKIM-Signature field added
 * (s=..., d=...)`.
 *
 * Trusted: a client in `mynetworks`, a SASL-authenticated client, local submission
 * (pickup, `mta.submit()`: no network peer) and Postern's own mail (bounces). Their
 * mail is signed (when a key's domain matches the From: address), never verified; the
 * rest is verified (when `dkimVerification` is set), never signed.
 *
 * How: the message is read back from the queue file (the store streams it): once for
 * the From: header, once through mailauth, which hashes the body as it streams and
 * keeps only the header block; Cleanup then writes the queue file again with the new
 * header fields on top (commit-stage.ts). An `Authentication-Results` field that
 * already carries our authserv-id is removed (RFC 8601 section 5): a sender cannot
 * forge our verdict. DNS goes through the Mta's Resolver.
 *
 * Does not: seal ARC chains, report DMARC aggregates, or sign mail from untrusted
 * clients. A signing or verification error defers the message (451 4.3.0) — an
 * unsigned message could be rejected by its recipients' DMARC checks.
 *
 * SECURITY: header text is hostile: the From: domain is parsed with Cleanup's header
 * parser (bounded by `headerSizeLimit`); log lines carry only the verdicts and
 * domains. Private keys never leave this module.
 *
 * STANDARDS: RFC 6376 (DKIM), RFC 8463 (Ed25519-SHA256), RFC 7208 (SPF), RFC 7489
 * (DMARC), RFC 8617 (ARC), RFC 8601 (Authentication-Results).
 *
 * @module
 */

import { toAsciiDomain } from '../address/domain.js';
import type { CleanupParameters } from '../cleanup/cleanup-parameters.js';
import type { CommitStage, StagedMessage, StageVerdict } from '../cleanup/commit-stage.js';
import { findAddresses } from '../cleanup/header-addresses.js';
import { HeaderParser } from '../cleanup/header-parser.js';
import type { ComponentLogger } from '../log.js';
import { SmtpReply } from '../smtp-reply.js';
import { CidrList } from '../tables/cidr.js';
import type { Clock, Resolver, SubmissionSource } from '../types.js';
import type { DkimVerificationConfig, LoadedSigningKey } from './dkim-config.js';
import { mailauthResolver } from './dns-adapter.js';
import { loadMailauth, type Mailauth, type MailauthResult } from './mailauth-loader.js';

/**
 * What MessageAuthentication needs.
 *
 * @example
 * ```ts
 * const auth = new MessageAuthentication({ params, signing: loadSigningKeys(keys), resolver, clock, log });
 * ```
 */
export interface MessageAuthenticationOptions {
  readonly params: Pick<CleanupParameters, 'myhostname' | 'mynetworks' | 'headerSizeLimit'>;
  /** Signing keys; none: nothing is signed. */
  readonly signing?: readonly LoadedSigningKey[];
  /** Inbound verification; undefined: none. */
  readonly verification?: DkimVerificationConfig;
  readonly resolver: Resolver;
  readonly clock: Clock;
  readonly log: ComponentLogger;
  /** DMARC `pct` sampling; defaults to Math.random. */
  readonly random?: () => number;
}

/** Components whose mail comes from this host, not from a network client. */
const LOCAL_COMPONENTS = new Set(['pickup', 'api', 'sendmail', 'local', 'bounce']);

/**
 * DKIM signing and inbound authentication, as a Cleanup commit stage.
 *
 * @example
 * ```ts
 * const auth = new MessageAuthentication({ params, signing, verification: {}, resolver, clock, log });
 * await auth.ready();
 * const cleanup = new Cleanup({ params, store, rewriter, queueIds, commitStage: auth });
 * ```
 */
export class MessageAuthentication implements CommitStage {
  readonly #keys: readonly LoadedSigningKey[];
  readonly #verification: DkimVerificationConfig | undefined;
  readonly #mynetworks: CidrList;
  readonly #authservId: string;
  readonly #headerSizeLimit: number;
  readonly #resolve: ReturnType<typeof mailauthResolver>;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;
  readonly #random: () => number;
  #mailauth: Mailauth | undefined;

  constructor(options: MessageAuthenticationOptions) {
    this.#keys = options.signing ?? [];
    this.#verification = options.verification;
    this.#mynetworks = new CidrList(options.params.mynetworks);
    this.#authservId = options.verification?.authservId ?? options.params.myhostname;
    this.#headerSizeLimit = options.params.headerSizeLimit;
    this.#resolve = mailauthResolver(options.resolver);
    this.#clock = options.clock;
    this.#log = options.log;
    this.#random = options.random ?? Math.random;
  }

  /** Loads mailauth; rejects with a ConfigError saying how to install it when it is missing. */
  async ready(): Promise<void> {
    this.#mailauth ??= await loadMailauth(this.#keys.length ? 'dkimSigning' : 'dkimVerification');
  }

  /** Whether mail from `source` is signed (true) or verified (false). */
  trusted(source: SubmissionSource): boolean {
    if (source.internal || source.authUser !== undefined) return true;
    if (!source.client || LOCAL_COMPONENTS.has(source.component)) return true;
    return this.#mynetworks.matches(source.client.address);
  }

  async run(message: StagedMessage): Promise<StageVerdict> {
    await this.ready();
    if (this.trusted(message.source)) return this.#sign(message);
    if (this.#verification) return this.#verify(message);
    return { action: 'keep' };
  }

  async #sign(message: StagedMessage): Promise<StageVerdict> {
    if (this.#keys.length === 0) return { action: 'keep' };
    const domain = await this.#fromDomain(message);
    const key = domain === undefined ? undefined : this.#keyFor(domain);
    if (!key) return { action: 'keep' };
    const { signatures, errors } = await this.#mailauth!.dkimSign(await message.open(), {
      canonicalization: 'relaxed/relaxed',
      algorithm: key.algorithm,
      signTime: new Date(this.#clock.now()),
      ...(key.headers ? { headerList: key.headers } : {}),
      signatureData: [
        {
          signingDomain: key.domain,
          selector: key.selector,
          privateKey: key.privateKey,
          algorithm: key.algorithm,
          canonicalization: 'relaxed/relaxed',
        },
      ],
    });
    if (errors?.length || !/^DKIM-Signature:/i.test(signatures))
      throw new Error(`DKIM signing for ${key.domain} failed: ${describe(errors?.[0])}`);
    this.#log.info(
      message.queueId,
      `DKIM-Signature field added (s=${key.selector}, d=${key.domain})`,
      {
        event: 'dkim_signed',
        selector: key.selector,
        domain: key.domain,
        algorithm: key.algorithm,
      },
    );
    return { action: 'prepend', headers: [signatures] };
  }

  async #verify(message: StagedMessage): Promise<StageVerdict> {
    const { client, helo } = message.source;
    const result = await this.#mailauth!.authenticate(await message.open(), {
      ...(client ? { ip: client.address } : {}),
      ...(helo !== undefined ? { helo } : {}),
      ...(message.sender ? { sender: message.sender } : {}),
      mta: this.#authservId,
      resolver: this.#resolve,
      disableBimi: true,
    });
    const verdicts = summary(result);
    this.#log.info(message.queueId, `authentication: ${verdicts.text}`, verdicts.fields);
    const ours = this.#authservId.toLowerCase();
    const prepend = {
      action: 'prepend' as const,
      headers: splitFields(result.headers),
      // RFC 8601 section 5: a field claiming our authserv-id did not come from us.
      dropHeader: (field: string) =>
        /^authentication-results:/i.test(field) &&
        field
          .slice(field.indexOf(':') + 1)
          .trim()
          .split(/[\s;]/)[0]!
          .toLowerCase() === ours,
    };
    const dmarc = result.dmarc;
    if (this.#verification?.dmarcPolicy !== 'enforce' || !dmarc || dmarc.status?.result !== 'fail')
      return prepend;
    const pct = dmarc.pct ?? 100;
    if (pct < 100 && this.#random() * 100 >= pct) return prepend;
    const domain = dmarc.domain ?? 'the sender domain';
    if (dmarc.policy === 'reject') {
      const reply = new SmtpReply(550, '5.7.1', `Email rejected per DMARC policy for ${domain}`);
      this.#log.info(message.queueId, `reject: DMARC policy of ${domain}: ${reply.toString()}`);
      return { action: 'reply', reply };
    }
    if (dmarc.policy === 'quarantine') {
      return { ...prepend, hold: `DMARC policy of ${domain}: quarantine` };
    }
    return prepend;
  }

  /** The domain of the first address of the (first) From: header, in ASCII, lower case. */
  async #fromDomain(message: StagedMessage): Promise<string | undefined> {
    const parser = new HeaderParser({ headerSizeLimit: this.#headerSizeLimit, mailboxLine: false });
    const stream = await message.open();
    try {
      for await (const chunk of stream) {
        for (const event of parser.push(chunk as Buffer)) {
          if (event.kind === 'header' && event.field.lowerName === 'from') {
            const first = findAddresses(event.field.value)[0]?.address;
            const at = first?.lastIndexOf('@') ?? -1;
            return at > 0 ? toAsciiDomain(first!.slice(at + 1)) : undefined;
          }
          if (event.kind !== 'header') return undefined;
        }
      }
      return undefined;
    } finally {
      stream.destroy();
    }
  }

  #keyFor(domain: string): LoadedSigningKey | undefined {
    return (
      this.#keys.find((k) => k.domain === domain) ??
      this.#keys.find((k) => k.subdomains && domain.endsWith(`.${k.domain}`))
    );
  }
}

/** `Received-SPF: ...\r\nAuthentication-Results: ...\r\n ...` → one string per field. */
function splitFields(headers: string): string[] {
  return headers
    .split(/\r?\n(?![ \t])/)
    .map((f) => f.trimEnd())
    .filter((f) => /^[\x21-\x39\x3b-\x7e]+:/.test(f));
}

function summary(r: MailauthResult): {
  text: string;
  fields: Record<string, string>;
} {
  const dkim = r.dkim?.results?.map((x) => x.status?.result ?? 'none') ?? [];
  const fields = {
    dkim: dkim.length ? dkim.join(',') : 'none',
    spf: (r.spf || undefined)?.status?.result ?? 'none',
    dmarc: (r.dmarc || undefined)?.status?.result ?? 'none',
    arc: (r.arc || undefined)?.status?.result ?? 'none',
  };
  return {
    text: `dkim=${fields.dkim} spf=${fields.spf} dmarc=${fields.dmarc} arc=${fields.arc}`,
    fields: { event: 'authentication', ...fields },
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'message' in err) return String(err.message);
  return err === undefined ? 'no signature made' : String(err);
}
