/**
 * ContentChecks: header_checks, mime_header_checks, nested_header_checks and
 * body_checks for one message — the lookup of one logical header or one body line,
 * the parsed action, and the per-message state (PASS, REJECT and DISCARD end all
 * inspection).
 *
 * Postfix counterpart: cleanup_message.c (cleanup_header_callback,
 * cleanup_body_callback, cleanup_act) and BUILTIN_FILTER_README. Each table is asked
 * with the whole line: a regexp or pcre table tries its patterns in order and the
 * first match wins; an empty line never matches. Which table a header goes to:
 * - primary headers: `header_checks`, except MIME headers (`Content-*`,
 *   `MIME-Version`), which go to `mime_header_checks`;
 * - headers of a multipart part: `mime_header_checks`;
 * - headers of an attached message (message/rfc822): MIME headers to
 *   `mime_header_checks`, the others to `nested_header_checks`;
 * - everything else, MIME boundaries included: `body_checks`.
 * `mimeHeaderChecks` and `nestedHeaderChecks` default to `headerChecks` (Postfix's
 * `$header_checks`; parameters.ts computes that default); an empty list (`[]`) turns
 * one off.
 *
 * Line edits (PREPEND, REPLACE, IGNORE, STRIP) are returned to the caller, which owns
 * the output; everything else is handed to the InspectionSink (the transaction).
 *
 * Does not: split lines or track MIME structure (mime-inspector.ts), write output.
 *
 * SECURITY: the looked-up text is hostile; it only ever reaches a table as a key.
 * A table that cannot answer (TableError `retry`) fails the message temporarily — a
 * check that cannot run must not let mail through unchecked.
 *
 * @module
 */

import type { LookupTable } from '../tables/types.js';
import { type CheckAction, parseCheckAction } from './check-action.js';

/** Where a line sits, for choosing a table and for logs (Postfix's log words). */
export type CheckClass = 'header' | 'mime-header' | 'nested-header' | 'body';

/**
 * The check tables of a Cleanup.
 *
 * @example
 * ```ts
 * const checks: CheckTables = { bodyChecks: createTable('regexp:/etc/postern/body_checks', 'bodyChecks') };
 * ```
 */
export interface CheckTables {
  /** Postfix `header_checks`. */
  readonly headerChecks?: LookupTable;
  /** Postfix `mime_header_checks` (the parameter defaults to `headerChecks`; here it is taken as given). */
  readonly mimeHeaderChecks?: LookupTable;
  /** Postfix `nested_header_checks` (as mimeHeaderChecks). */
  readonly nestedHeaderChecks?: LookupTable;
  /** Postfix `body_checks`. */
  readonly bodyChecks?: LookupTable;
}

/** An edit of the current line. */
export type LineEdit = Extract<CheckAction, { kind: 'prepend' | 'replace' | 'ignore' | 'strip' }>;

/** Receives the actions that act on the message rather than the line. */
export interface InspectionSink {
  /**
   * A match with an action on the message (reject, discard, hold, redirect, bcc,
   * filter, warn, info, strip, pass, or an unusable action to warn about).
   */
  act(where: CheckClass, line: string, action: CheckAction): void;
  /** A table failed; the message must be deferred. */
  failed(where: CheckClass, error: unknown): void;
}

/** Whether a header (lower-cased name) is a MIME header (Postfix HDR_OPT_MIME). */
export function isMimeHeader(lowerName: string): boolean {
  return lowerName.startsWith('content-') || lowerName === 'mime-version';
}

/** Per-message check state. */
export class ContentChecks {
  readonly #tables: CheckTables;
  readonly #sink: InspectionSink;
  #active = true;

  constructor(tables: CheckTables, sink: InspectionSink) {
    this.#tables = tables;
    this.#sink = sink;
  }

  /** Whether any table is configured at all (otherwise nothing needs line splitting). */
  static configured(tables: CheckTables): boolean {
    return (
      tables.headerChecks !== undefined ||
      tables.mimeHeaderChecks !== undefined ||
      tables.nestedHeaderChecks !== undefined ||
      tables.bodyChecks !== undefined
    );
  }

  /** Inspection still runs (no PASS, REJECT, DISCARD or failure yet). */
  get active(): boolean {
    return this.#active;
  }

  /** Whether body lines are checked at all. */
  get checksBody(): boolean {
    return this.#active && this.#tables.bodyChecks !== undefined;
  }

  /** Whether headers of MIME parts and attached messages need to be looked at. */
  get checksNestedHeaders(): boolean {
    return (
      this.#active &&
      (this.#tableFor('mime-header') !== undefined || this.#tableFor('nested-header') !== undefined)
    );
  }

  /** Stops all inspection (the transaction failed or was discarded). */
  stop(): void {
    this.#active = false;
  }

  /**
   * Checks one logical header (unfolded, `Name: value`) or one body line (without its
   * line end). Returns the line edit to apply, or undefined to keep the line.
   */
  async check(where: CheckClass, line: string): Promise<LineEdit | undefined> {
    if (!this.#active || line === '') return undefined;
    const table = this.#tableFor(where);
    if (!table) return undefined;
    let result: string | undefined;
    try {
      result = await table.lookup(line);
    } catch (err) {
      this.#active = false;
      this.#sink.failed(where, err);
      return undefined;
    }
    if (result === undefined || !this.#active) return undefined;
    const action = parseCheckAction(result);
    switch (action.kind) {
      case 'dunno':
        return undefined;
      case 'prepend':
      case 'replace':
      case 'ignore':
        return action;
      case 'strip':
        this.#sink.act(where, line, action);
        return action;
      case 'reject':
      case 'discard':
      case 'pass':
        this.#active = false;
        this.#sink.act(where, line, action);
        return undefined;
      default:
        this.#sink.act(where, line, action);
        return undefined;
    }
  }

  #tableFor(where: CheckClass): LookupTable | undefined {
    const t = this.#tables;
    switch (where) {
      case 'header':
        return t.headerChecks;
      case 'mime-header':
        return t.mimeHeaderChecks;
      case 'nested-header':
        return t.nestedHeaderChecks;
      case 'body':
        return t.bodyChecks;
    }
  }
}
