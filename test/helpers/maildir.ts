/** Reads a Maildir's new/ folder for tests (line ends given back as CRLF). */

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function readMaildir(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(join(dir, 'new'));
  } catch {
    return [];
  }
  names.sort();
  // Maildir files have LF line ends (as Postfix writes them); tests compare with the
  // queue's CRLF form, so convert back.
  const texts = await Promise.all(names.map((n) => readFile(join(dir, 'new', n), 'latin1')));
  return texts.map((t) => t.replace(/\r?\n/g, '\r\n'));
}

/** Polls until `predicate` holds for the Maildir's messages, or fails after `timeoutMs`. */
export async function waitForMaildir(
  dir: string,
  predicate: (messages: string[]) => boolean,
  timeoutMs = 20_000,
): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const messages = await readMaildir(dir);
    if (predicate(messages)) return messages;
    if (Date.now() > end)
      throw new Error(
        `Maildir ${dir}: condition not met within ${timeoutMs} ms (${messages.length} messages)`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The header block of a stored message, unfolded, as [name, value] pairs. */
export function headersOf(message: string): [string, string][] {
  const end = message.indexOf('\r\n\r\n');
  const block = (end < 0 ? message : message.slice(0, end)).replace(/\r\n[ \t]/g, ' ');
  return block.split('\r\n').map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
  });
}
