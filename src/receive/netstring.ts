/**
 * Netstrings (`<length>:<bytes>,`) as QMQP frames them.
 *
 * Postfix counterpart: util/netstring.c. The length is decimal digits only — no sign,
 * no spaces — and a length with more digits than any allowed size is a size error
 * before a single payload byte is read.
 *
 * STANDARDS: D. J. Bernstein, "Netstrings" (cr.yp.to/proto/netstrings.txt).
 *
 * @module
 */

import { PosternError } from '../errors.js';
import type { ByteReader } from './byte-reader.js';

/** Why a netstring could not be read: Postfix's two qmqpd messages. */
export class NetstringError extends PosternError {
  readonly kind: 'format' | 'size';
  constructor(kind: 'format' | 'size', what: string) {
    super(
      'POSTERN_ERR_NETSTRING',
      kind === 'size'
        ? `netstring length exceeds storage limit while reading ${what}`
        : `netstring format error while reading ${what}`,
    );
    this.kind = kind;
  }
}

const COLON = 0x3a;
const COMMA = 0x2c;

/**
 * Reads `<digits>:` and returns the length. `limit` bounds the length (a larger one is
 * a size error). Anything else — no digits, a non-digit, the end of input — is a
 * format error.
 */
export async function readNetstringLength(
  reader: ByteReader,
  limit: number,
  what: string,
): Promise<number> {
  let length = 0;
  let digits = 0;
  for (;;) {
    const b = await reader.readByte();
    if (b === undefined) throw new NetstringError('format', what);
    if (b === COLON) {
      if (digits === 0) throw new NetstringError('format', what);
      return length;
    }
    if (b < 0x30 || b > 0x39) throw new NetstringError('format', what);
    length = length * 10 + (b - 0x30);
    digits++;
    if (length > limit || digits > 15) throw new NetstringError('size', what);
  }
}

/** Reads the `,` that ends a netstring. */
export async function readNetstringEnd(reader: ByteReader, what: string): Promise<void> {
  if ((await reader.readByte()) !== COMMA) throw new NetstringError('format', what);
}

/** A whole small netstring (sender, recipient), at most `limit` bytes. */
export async function readNetstring(
  reader: ByteReader,
  limit: number,
  what: string,
): Promise<Buffer> {
  const length = await readNetstringLength(reader, limit, what);
  const data = await reader.readExact(length, what).catch(() => {
    throw new NetstringError('format', what);
  });
  await readNetstringEnd(reader, what);
  return data;
}

/** Frames `data` as a netstring. */
export function netstring(data: string | Buffer): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([
    Buffer.from(`${body.length}:`, 'latin1'),
    body,
    Buffer.from(',', 'latin1'),
  ]);
}
