/**
 * The parts of mailsplit's MimeNode that message parsing uses, merged into the shared
 * declaration of the package (which ships no types).
 *
 * @module
 */

declare module 'mailsplit' {
  import type { Transform } from 'node:stream';

  interface MimeNode {
    readonly charset: string | false;
    readonly filename: string | false;
    readonly disposition: string | false;
    getDecoder(): Transform;
  }
}
