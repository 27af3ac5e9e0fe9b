/**
 * CleanupContext: what every transaction of one Cleanup shares — the parameters, the
 * Rewriter, the tables built once, the store, the content filter and the commit stage.
 *
 * Postfix counterpart: the cleanup(8) process's globals (cleanup_init.c): the maps and
 * settings each CLEANUP_STATE reads while it handles one message.
 *
 * Does not: hold anything of one message (cleanup-state.ts).
 *
 * @module
 */

import type { ComponentLogger } from '../log.js';
import type { QueueStore } from '../queue/types.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import type { Clock } from '../types.js';
import type { AddressMapping, AddressTables } from './address-mapping.js';
import type { CleanupParameters } from './cleanup-parameters.js';
import type { CommitStage } from './commit-stage.js';
import type { CheckTables } from './content-checks.js';
import type { ContentFilter } from './content-filter.js';
import type { HeaderRewriting } from './header-rewriting.js';
import type { LocalHeaderRewriteClients } from './missing-headers.js';

/** What every transaction of one Cleanup shares. */
export interface CleanupContext {
  readonly params: CleanupParameters;
  readonly rewriter: Pick<Rewriter, 'rewrite'>;
  readonly clock: Clock;
  readonly log: ComponentLogger;
  readonly headerClients: LocalHeaderRewriteClients;
  /** `messageDropHeaders`, lower-cased. */
  readonly dropHeaders: ReadonlySet<string>;
  readonly store: QueueStore;
  readonly checkTables: CheckTables;
  readonly addressTables: AddressTables;
  readonly mapping: AddressMapping;
  readonly headerRewriting: HeaderRewriting;
  readonly contentFilter?: ContentFilter;
  /** Signing and authentication before the commit (commit-stage.ts). */
  readonly commitStage?: CommitStage;
}
