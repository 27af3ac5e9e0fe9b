/**
 * MIME downgrade: 8-bit MIME mail made 7-bit for a server that does not announce
 * 8BITMIME.
 *
 * Postfix counterpart: mime_state.c with MIME_OPT_DOWNGRADE, as smtp(8) uses it unless
 * `disable_mime_output_conversion = yes`: a leaf part whose Content-Transfer-Encoding
 * is `8bit` or `binary` is re-encoded as quoted-printable, and a multipart or
 * message/rfc822 container that declares `8bit`/`binary` is relabelled `7bit` (its
 * parts are converted one by one).
 *
 * Does not: touch 8-bit bytes in headers (RFC 2047 encoding is the sender's job), or
 * convert a part that declares no encoding but carries 8-bit bytes (Postfix leaves it
 * too); such bytes go out unchanged.
 *
 * A converted part ends with a line break even when the original's last line had
 * none (the CRLF before a boundary belongs to the boundary): one trailing empty line
 * at most, which does not change the text.
 *
 * Built on mailsplit (Splitter → Rewriter → Joiner), whose quoted-printable encoder is
 * libqp's, the one libmime uses. Only mail that needs the downgrade takes this path,
 * and only then is mailsplit loaded.
 *
 * STANDARDS: RFC 6152 (8BITMIME), RFC 2045 section 6.7 (quoted-printable), RFC 1652
 * section 2 (conversion by the client).
 *
 * @module
 */

import { pipeline, type Readable, type Transform } from 'node:stream';
import type { MimeNode } from 'mailsplit';

const EIGHT_BIT = new Set(['8bit', 'binary']);

function declaresEightBit(node: MimeNode): boolean {
  return node.encoding !== false && EIGHT_BIT.has(String(node.encoding).toLowerCase());
}

/**
 * Opens the content and returns it converted to 7-bit MIME, as a stream. mailsplit
 * (and the charset tables it brings) is loaded on the first downgrade, not with the
 * library: most servers offer 8BITMIME, and a process that never downgrades keeps
 * ~9 MiB less. The content is opened once it is loaded, so that no stream waits
 * unread (and unwatched for errors) meanwhile.
 */
export async function downgradeMime(open: () => Readable): Promise<Readable> {
  const { Joiner, Rewriter, Splitter } = await import('mailsplit');
  const content = open();
  const splitter = new Splitter();
  const rewriter = new Rewriter((node: MimeNode) => {
    if (!declaresEightBit(node)) return false;
    if (node.multipart || node.contentType === 'message/rfc822') {
      // A container cannot be encoded; its parts are. Relabel it (RFC 2045 6.4).
      node.headers.update('Content-Transfer-Encoding', '7bit');
      return false;
    }
    return true;
  });
  rewriter.on('node', ({ decoder, encoder }) => {
    // The encoder comes from node.getEncoder('quoted-printable'), which also rewrites
    // the part's Content-Transfer-Encoding header.
    decoder.pipe(encoder as Transform);
  });
  const joiner = new Joiner();
  return pipeline(content, splitter, rewriter, joiner, () => {
    // Errors reach the consumer through the joiner, which pipeline() destroys.
  });
}

/** Whether a request needs the downgrade for a server with these ESMTP features. */
export function needsDowngrade(
  eightBit: boolean,
  bodyType: string,
  features: ReadonlyMap<string, string>,
): boolean {
  return (eightBit || bodyType === '8BITMIME') && !features.has('8BITMIME');
}
