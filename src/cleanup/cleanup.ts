/**
 * Cleanup: the one way into the queue. Implements the Submission port: every receiver
 * (smtpd, qmqpd, pickup), Bounce, forwarding and the public `submit()` open a
 * transaction here, stream the content, give the envelope and commit.
 *
 * Postfix counterpart: cleanup(8). Each `open()` is one cleanup session: it takes a
 * queue ID from the QueueIdGenerator, creates the message in the QueueStore, and
 * returns a CleanupTransaction (cleanup-transaction.ts) that rewrites the envelope
 * (canonical form, canonical_maps, masquerading, virtual aliases, BCC maps:
 * cleanup-envelope.ts, address-mapping.ts), prepends Received, runs header_checks,
 * mime_header_checks, nested_header_checks and body_checks (content-checks.ts,
 * mime-inspector.ts), rewrites header addresses (header-rewriting.ts), repairs missing
 * headers for local clients, drops `messageDropHeaders`, counts hops and size, offers
 * the message to the content filter (content-filter.ts) and commits the record —
 * straight into `hold` for the HOLD action.
 *
 * Tables come from the parameters (`headerChecks`, `virtualAliasMaps`, ... as
 * `type:name` strings, objects, functions or arrays: tables/create-table.ts
 * createTable) and are built once here; `tables` overrides them with ready
 * LookupTables.
 *
 * Logging (component `cleanup`, Postfix's lines): `ID: message-id=<...>`, `ID: hold:
 * ...`, `ID: discard: ...`, `ID: reject: ...`, `ID: warning: header ...`. The
 * `from=<...>, size=N, nrcpt=N (queue active)` line belongs to the QueueManager.
 *
 * Does not: Milters, `in_flow_delay`, `receive_override_options`. Mail Postern makes
 * itself (`source.internal`) gets no Received header and no header repair.
 *
 * @module
 */

import { systemClock } from '../clock.js';
import { SmtpError } from '../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import type { MessageWriter, QueueStore } from '../queue/types.js';
import type { QueueIdGenerator } from '../queue-id.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import { SmtpReply } from '../smtp-reply.js';
import { createTable } from '../tables/create-table.js';
import type { LookupTable, TableSpec } from '../tables/types.js';
import type { Clock, SubmissionPort, SubmissionSource, SubmissionTransaction } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { AddressMapping, type AddressTables } from './address-mapping.js';
import type { CleanupContext } from './cleanup-context.js';
import type { CleanupParameters } from './cleanup-parameters.js';
import { CleanupTransaction } from './cleanup-transaction.js';
import type { CommitStage } from './commit-stage.js';
import type { CheckTables } from './content-checks.js';
import type { ContentFilter } from './content-filter.js';
import { HeaderRewriting } from './header-rewriting.js';
import { LocalHeaderRewriteClients } from './missing-headers.js';

/**
 * Every table Cleanup consults, by parameter name.
 *
 * @example
 * ```ts
 * const tables: Partial<CleanupTables> = {
 *   headerChecks: createTable('regexp:{ {/^Subject:.*viagra/ REJECT spam} }', 'headerChecks'),
 *   virtualAliasMaps: new InlineTable({ 'sales@example.com': 'amy@example.com' }),
 * };
 * ```
 */
export type CleanupTables = CheckTables & AddressTables;

const CHECK_KEYS = [
  'headerChecks',
  'mimeHeaderChecks',
  'nestedHeaderChecks',
  'bodyChecks',
] as const;
const ADDRESS_KEYS = [
  'canonicalMaps',
  'senderCanonicalMaps',
  'recipientCanonicalMaps',
  'virtualAliasMaps',
  'senderBccMaps',
  'recipientBccMaps',
] as const;

/**
 * What Cleanup needs.
 *
 * @example
 * ```ts
 * const params = resolveParameters({ myhostname: 'mx.example.com' });
 * const options: CleanupOptions = {
 *   params,
 *   store: new MemoryQueueStore(),
 *   rewriter: new Rewriter({ params }),
 *   queueIds: new QueueIdGenerator(),
 * };
 * ```
 */
export interface CleanupOptions {
  /** The parameters Cleanup reads (header checks, limits, `myorigin`...). */
  readonly params: CleanupParameters;
  /** Where accepted messages are written (the `incoming` queue). */
  readonly store: QueueStore;
  /**
   * Canonical rewriting of addresses (trivial-rewrite); `isLocalDomain`, when given,
   * lets table lookups use bare `user` keys for local domains (virtual(5)).
   */
  readonly rewriter: Pick<Rewriter, 'rewrite'> & Partial<Pick<Rewriter, 'isLocalDomain'>>;
  /** Gives each new message its queue ID. */
  readonly queueIds: QueueIdGenerator;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Logs under component `cleanup`. @default silentLogger */
  readonly logger?: Logger;
  /** Ready tables that replace those built from the parameters of the same name. */
  readonly tables?: Partial<CleanupTables>;
  /** The content-filter hook (content-filter.ts). */
  readonly contentFilter?: ContentFilter;
  /** Signing and authentication before the commit (commit-stage.ts: DKIM, Authentication-Results). */
  readonly commitStage?: CommitStage;
}

/**
 * The message canonicalizer every receiver submits through: it rewrites addresses, adds
 * missing headers, runs header/body checks and the content filter, and writes the message
 * to the queue. Postfix counterpart: cleanup(8).
 *
 * @example
 * ```ts
 * const cleanup = new Cleanup({ params, store, rewriter, queueIds: new QueueIdGenerator() });
 * const tx = await cleanup.open({ component: 'api', protocol: 'local' });
 * tx.setSender('alice@example.com');
 * tx.addRecipient({ address: 'bob@example.com' });
 * tx.content.end('Subject: hi\r\n\r\nHello\r\n');
 * const result = await tx.commit();
 * ```
 */
export class Cleanup implements SubmissionPort {
  readonly #store: QueueStore;
  readonly #queueIds: QueueIdGenerator;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;
  readonly #ctx: CleanupContext;
  readonly #built: LookupTable[] = [];

  /**
   * @throws ConfigError when `localHeaderRewriteClients` has an entry it cannot use, or
   *   a table parameter cannot be built (the message names the key and the file line).
   */
  constructor(options: CleanupOptions) {
    this.#store = options.store;
    this.#queueIds = options.queueIds;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).for('cleanup');
    const { params, rewriter } = options;
    const tables = this.#buildTables(params, options.tables ?? {});
    const rewrite = (a: string): string => rewriter.rewrite(a);
    const mapping = new AddressMapping({
      params,
      tables,
      rewrite,
      ...(rewriter.isLocalDomain
        ? { isLocalDomain: (d: string) => rewriter.isLocalDomain!(d) }
        : {}),
      log: this.#log,
    });
    this.#ctx = {
      params,
      rewriter,
      clock: this.#clock,
      log: this.#log,
      headerClients: new LocalHeaderRewriteClients(params),
      dropHeaders: new Set(params.messageDropHeaders.map((h) => h.trim().toLowerCase())),
      store: options.store,
      checkTables: tables,
      addressTables: tables,
      mapping,
      headerRewriting: new HeaderRewriting({ params, mapping, rewrite }),
      ...(options.contentFilter ? { contentFilter: options.contentFilter } : {}),
      ...(options.commitStage ? { commitStage: options.commitStage } : {}),
    };
  }

  /** Closes the tables Cleanup built from its parameters (files, caches). */
  async close(): Promise<void> {
    await Promise.allSettled(this.#built.map((t) => t.close?.()));
  }

  #buildTables(params: CleanupParameters, given: Partial<CleanupTables>): CleanupTables {
    const out: Record<string, LookupTable> = {};
    const bySpec = new Map<TableSpec, LookupTable>();
    const build = (key: keyof CleanupTables, substitution: boolean): void => {
      const ready = given[key];
      if (ready) {
        out[key] = ready;
        return;
      }
      const spec = params[key];
      if (spec === undefined) return;
      // mime/nested header checks default to the very same header_checks table.
      let table = bySpec.get(spec);
      if (!table) {
        table = createTable(spec, key, { substitution });
        bySpec.set(spec, table);
        this.#built.push(table);
      }
      out[key] = table;
    };
    for (const key of CHECK_KEYS) build(key, true);
    for (const key of ADDRESS_KEYS) build(key, false);
    // A header_checks given as a table also serves mime/nested checks left at their default.
    if (given.headerChecks) {
      for (const key of ['mimeHeaderChecks', 'nestedHeaderChecks'] as const) {
        if (!given[key] && params[key] === params.headerChecks) out[key] = given.headerChecks;
      }
    }
    return out as CleanupTables;
  }

  /**
   * Opens a transaction with a new queue ID.
   *
   * @throws SmtpError `451 4.3.0 Error: queue file write error` when the store cannot
   *   create the message (the reason is logged).
   */
  async open(source: SubmissionSource): Promise<SubmissionTransaction> {
    const queueId = this.#queueIds.next();
    const arrivalTime = this.#clock.now();
    let writer: MessageWriter;
    try {
      writer = await this.#store.create(queueId);
    } catch (err) {
      const reason = errorMessage(err);
      this.#log.warning(queueId, `cannot create queue file: ${reason}`);
      throw new SmtpError(new SmtpReply(451, '4.3.0', 'Error: queue file write error'), reason, {
        cause: err,
      });
    }
    return new CleanupTransaction(this.#ctx, source, queueId, writer, arrivalTime);
  }
}
