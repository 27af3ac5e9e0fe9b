/**
 * MTA-STS enforcement in the SMTP client: whether a delivery is under a domain's policy,
 * and what the policy then asks of it — which MX hosts may be used, which TLS level the
 * sessions need, how a refusal reads, what mode `testing` logs.
 *
 * Postfix counterpart: none built in; with postfix-mta-sts-resolver the decision comes
 * back to smtp(8) as an `smtp_tls_policy_maps` answer (`secure match=<mx patterns>`).
 *
 * A policy applies (MtaStsEnforcement.decide) only for SMTP to a domain's MX hosts: one
 * unbracketed domain nexthop that is the recipient domain, not `relayhost`, and no
 * `smtpTlsPolicyMaps` entry for it (an explicit policy wins); a policy in mode `none` is
 * no policy. Mode `enforce` keeps only the MX hosts the policy's `mx` patterns match
 * and requires TLS with a certificate verified against the MX host name (level
 * `verify`, `match=hostname`; a stricter global `secure` or `dane-only` stays). Mode
 * `testing` changes nothing and logs what enforcement would have refused.
 *
 * Does not: fetch or cache policies (mta-sts-cache.ts), connect, or send TLS reports
 * (RFC 8460).
 *
 * SECURITY: under an enforced policy a TLS failure defers; nothing falls back to
 * plaintext or to an MX host outside the policy.
 *
 * STANDARDS: RFC 8461 sections 4.1 (MX host validation), 4.2 (policy application), 5
 * (enforcement and testing modes).
 *
 * @module
 */

import type { ComponentLogger } from '../../log.js';
import { SmtpReply } from '../../smtp-reply.js';
import type { LookupTable } from '../../tables/types.js';
import type { Resolver } from '../../types.js';
import type { DeliveryRequest } from '../types.js';
import type { ClientSettings } from './client-settings.js';
import { type MtaStsResolver, mtaStsResolverFor } from './mta-sts-cache.js';
import { mtaStsDomain } from './mta-sts-fetcher.js';
import { type MtaStsPolicy, mtaStsMxMatches } from './mta-sts-policy.js';
import type { Endpoint } from './mx-resolver.js';
import type { Nexthop } from './nexthop.js';
import { relayName, type SmtpConnection } from './smtp-connection.js';
import { findPolicyEntry, type TlsPolicy } from './tls-policy.js';

/**
 * What an MtaStsEnforcement needs from its SMTP client.
 *
 * @example
 * ```ts
 * const options: MtaStsEnforcementOptions = {
 *   settings: clientSettings(params, 'smtp'),
 *   resolver: new DnsResolver(),
 *   tlsTable: undefined,
 *   logger: logger.for('smtp'),
 * };
 * ```
 */
export interface MtaStsEnforcementOptions {
  /** The client's settings: TLS level, relayhost, MTA-STS limits. */
  readonly settings: ClientSettings;
  /** DNS for the default policy cache. */
  readonly resolver: Resolver;
  /** The policy cache to use; default: mtaStsResolverFor() on `resolver`. */
  readonly policies?: MtaStsResolver | undefined;
  /** `smtpTlsPolicyMaps`: a destination with an entry there gets no MTA-STS. */
  readonly tlsTable: LookupTable | undefined;
  /** Trusted CAs (PEM) for the default policy cache; undefined = Node's bundle. */
  readonly ca?: string | undefined;
  /** Where policy mismatches and mode `testing` findings are logged. */
  readonly logger: ComponentLogger;
}

/**
 * Decides, per delivery, whether an MTA-STS policy applies.
 *
 * @example
 * ```ts
 * const sts = new MtaStsEnforcement({ settings, resolver, tlsTable: undefined, logger });
 * const decision = await sts.decide(nexthops, 'example.com', request);
 * const usable = decision ? decision.usable(endpoints) : endpoints;
 * ```
 */
export class MtaStsEnforcement {
  readonly #settings: ClientSettings;
  readonly #policies: MtaStsResolver;
  readonly #tlsTable: LookupTable | undefined;
  readonly #log: ComponentLogger;

  constructor(options: MtaStsEnforcementOptions) {
    this.#settings = options.settings;
    this.#tlsTable = options.tlsTable;
    this.#log = options.logger;
    this.#policies =
      options.policies ??
      mtaStsResolverFor(options.settings, options.resolver, options.logger, { ca: options.ca });
  }

  /**
   * The MTA-STS policy for one delivery, when one applies: SMTP to the recipient
   * domain's MX hosts, not relayhost, no `smtpTlsPolicyMaps` entry, mode not `none`.
   */
  async decide(
    nexthops: readonly Nexthop[],
    nexthopText: string,
    request: DeliveryRequest,
  ): Promise<MtaStsDecision | undefined> {
    const hop = nexthops.length === 1 ? nexthops[0] : undefined;
    if (hop?.kind !== 'inet' || !hop.mx) return undefined;
    const relayhost = this.#settings.relayhost.trim();
    if (relayhost !== '' && nexthopText.trim() === relayhost) return undefined;
    const domain = mtaStsDomain(hop.host);
    if (domain === undefined) return undefined;
    // The nexthop must be the recipient domain itself, not a transport(5) redirection.
    const address = request.recipients[0]?.address ?? '';
    const at = address.lastIndexOf('@');
    if (at < 0 || mtaStsDomain(address.slice(at + 1)) !== domain) return undefined;
    if (await findPolicyEntry(this.#tlsTable, nexthopText, hop.host)) return undefined;
    const policy = await this.#policies.lookup(domain);
    if (!policy || policy.mode === 'none') return undefined;
    return new MtaStsDecision(domain, policy, this.#settings, this.#log, request.queueId);
  }
}

/**
 * The MTA-STS policy in force for one delivery (mode `enforce` or `testing`).
 *
 * @example
 * ```ts
 * const decision = await sts.decide(nexthops, nexthopText, request);
 * if (decision?.enforced && decision.usable(endpoints).length === 0) defer(decision.noMatchReply());
 * ```
 */
export class MtaStsDecision {
  /** The policy domain (ASCII, lower case). */
  readonly domain: string;
  /** The policy, mode `enforce` or `testing`. */
  readonly policy: MtaStsPolicy;
  readonly #settings: ClientSettings;
  readonly #log: ComponentLogger;
  readonly #queueId: string;

  constructor(
    domain: string,
    policy: MtaStsPolicy,
    settings: ClientSettings,
    logger: ComponentLogger,
    queueId: string,
  ) {
    this.domain = domain;
    this.policy = policy;
    this.#settings = settings;
    this.#log = logger;
    this.#queueId = queueId;
  }

  /** True in mode `enforce`: the policy decides which servers and which TLS. */
  get enforced(): boolean {
    return this.policy.mode === 'enforce';
  }

  /** Whether an MX host may be used (a cached session's, for one). */
  allows(host: string): boolean {
    return !this.enforced || mtaStsMxMatches(this.policy.mx, host);
  }

  /** The servers the policy lets us use (all of them in mode `testing`); logs the others. */
  usable(list: readonly Endpoint[]): readonly Endpoint[] {
    const matching = list.filter((ep) => mtaStsMxMatches(this.policy.mx, ep.host));
    if (matching.length < list.length) {
      const others = [...new Set(list.filter((ep) => !matching.includes(ep)).map((ep) => ep.host))];
      this.#log.warning(
        this.#queueId,
        `MTA-STS policy of ${this.domain} (mode ${this.policy.mode}, mx ${this.policy.mx.join(' ')}) does not list MX host ${others.join(', ')}${this.enforced ? ': not used' : ': used anyway in testing mode'}`,
      );
    }
    return this.enforced ? matching : list;
  }

  /** The deferral when no MX host matches an enforced policy (RFC 8461 section 5). */
  noMatchReply(): SmtpReply {
    return new SmtpReply(451, '4.7.5', `no MX host matches the MTA-STS policy of ${this.domain}`);
  }

  /** The TLS policy an enforced policy imposes (a stricter global level stays). */
  tlsPolicy(): TlsPolicy {
    const level = this.#settings.tlsSecurityLevel;
    if (level === 'secure' || level === 'dane-only') return { level };
    return { level: 'verify', match: ['hostname'] };
  }

  /** Names the policy in a TLS failure (4.7.4, 4.7.5) it caused. */
  note(reply: SmtpReply): SmtpReply {
    if (!this.enforced || !/^4\.7\.[45]$/.test(reply.enhanced)) return reply;
    return reply.withText(`${reply.text} (MTA-STS policy of ${this.domain})`);
  }

  /** Mode `testing`: logs what enforcement would have refused on this session. */
  checkTesting(conn: SmtpConnection, ep: Endpoint): void {
    if (this.policy.mode !== 'testing') return;
    const label = relayName(ep);
    const why = !conn.tls
      ? `the session with ${label} is not encrypted`
      : !conn.tls.authorized
        ? `the certificate of ${label} is not trusted or does not name ${ep.host}`
        : undefined;
    if (why === undefined) return;
    this.#log.warning(
      this.#queueId,
      `MTA-STS policy of ${this.domain} (mode testing): ${why}; in mode enforce the mail would be deferred`,
    );
  }
}
