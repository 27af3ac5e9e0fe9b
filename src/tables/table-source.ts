/**
 * Where a table's text comes from, and how it is split into logical lines: a file that
 * is reloaded when it changes, or text given inline in the config.
 *
 * Postfix counterpart: readlline.c (logical lines: `#` comments, blank lines, lines
 * that start with white space continue the previous one) and dict.c's dict_changed()
 * (a table file that changed makes the daemon restart; Postern reloads it instead).
 *
 * Does not: parse keys, patterns or results (each table type does); watch files with
 * inotify (the file is stat()ed at most once per `checkInterval` on lookup, which costs
 * nothing between checks and works on every file system).
 *
 * SECURITY: a reload that fails (the file vanished, became unreadable, or holds a
 * syntax error) keeps the old content and logs: a half-edited file never empties a
 * table that decides where mail goes.
 *
 * @module
 */

import { readFileSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { TableError } from '../errors.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/error-message.js';

/** One logical line and the physical line number it starts on. */
export interface LogicalLine {
  readonly text: string;
  readonly line: number;
}

/**
 * Splits table text into logical lines: blank lines and lines whose first non-blank
 * character is `#` are dropped; a line that starts with white space is joined to the
 * logical line before it (its leading white space kept, the line break dropped).
 * Trailing white space is removed.
 */
export function logicalLines(text: string): LogicalLine[] {
  const out: { text: string; line: number }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\s+$/, '');
    const trimmed = raw.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const last = out[out.length - 1];
    if (raw !== trimmed && last) {
      last.text += raw;
      continue;
    }
    out.push({ text: trimmed, line: i + 1 });
  }
  return out;
}

/**
 * Options shared by file-backed tables.
 *
 * @example
 * ```ts
 * const table = new TextTable('texthash', '/etc/postern/virtual', { checkInterval: 5_000, logger } satisfies FileSourceOptions);
 * ```
 */
export interface FileSourceOptions {
  /** Where reload failures are logged. */
  readonly logger?: Logger;
  /** Minimum time between two stat() calls of the file, in ms. @default 1000 */
  readonly checkInterval?: number;
  /** The clock (ms); tests pass their own. @default Date.now */
  readonly now?: () => number;
}

/**
 * Content parsed from a file, reparsed when the file's mtime, size or inode changes.
 * `parse` throws TableError `config` (with `file:line`) for bad content.
 */
export class FileSource<T> {
  readonly path: string;
  readonly #tableName: string;
  readonly #parse: (text: string) => T;
  readonly #logger: Logger | undefined;
  readonly #interval: number;
  readonly #now: () => number;
  #content: T;
  #stamp: string;
  #nextCheck: number;
  #checking: Promise<void> | undefined;

  /**
   * Reads and parses the file now, so a missing file or a syntax error is reported at
   * start-up. Relative paths resolve against the process's working directory.
   *
   * @throws TableError `config` when the file cannot be read or parsed
   */
  constructor(
    path: string,
    tableName: string,
    parse: (text: string) => T,
    options: FileSourceOptions = {},
  ) {
    this.path = resolvePath(path);
    this.#tableName = tableName;
    this.#parse = parse;
    this.#logger = options.logger;
    this.#interval = options.checkInterval ?? 1000;
    this.#now = options.now ?? Date.now;
    let text: string;
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new TableError(
        'config',
        tableName,
        `cannot read ${this.path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}; check the path (relative paths start at the working directory) and its permissions`,
        { cause: err },
      );
    }
    this.#content = parse(text);
    this.#stamp = stamp;
    this.#nextCheck = this.#now() + this.#interval;
  }

  /** The current content, reloading first if the check interval has passed and the file changed. */
  async get(): Promise<T> {
    if (this.#now() >= this.#nextCheck) {
      this.#checking ??= this.#check().finally(() => {
        this.#checking = undefined;
      });
      await this.#checking;
    }
    return this.#content;
  }

  /** Forces a check on the next lookup (tests, SIGHUP-style reloads). */
  expire(): void {
    this.#nextCheck = 0;
  }

  async #check(): Promise<void> {
    this.#nextCheck = this.#now() + this.#interval;
    try {
      const st = await stat(this.path);
      const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (stamp === this.#stamp) return;
      const text = readFileSync(this.path, 'utf8');
      this.#content = this.#parse(text);
      this.#stamp = stamp;
      this.#logger?.log('info', 'dict', undefined, `${this.#tableName}: reloaded ${this.path}`);
    } catch (err) {
      // Keep serving the old content: a table must not empty itself mid-edit.
      this.#logger?.log(
        'warning',
        'dict',
        undefined,
        `${this.#tableName}: reload of ${this.path} failed, keeping the previous content: ${errorMessage(err)}`,
      );
    }
  }
}
