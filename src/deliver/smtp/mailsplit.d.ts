/**
 * The part of mailsplit's API the MIME downgrade uses (the package ships no types).
 *
 * @module
 */

declare module 'mailsplit' {
  import type { Transform } from 'node:stream';

  /** One MIME node as the Splitter reports it. */
  export interface MimeNode {
    readonly type: 'node';
    readonly root: boolean;
    readonly contentType: string | false;
    readonly encoding: string | false;
    readonly multipart: string | false;
    readonly headers: {
      getFirst(key: string): string;
      update(key: string, value: string): void;
      hasHeader(key: string): boolean;
    };
  }

  export class Splitter extends Transform {
    constructor(options?: { ignoreEmbedded?: boolean; maxHeadSize?: number });
  }
  export class Joiner extends Transform {}
  export class Rewriter extends Transform {
    constructor(filter: (node: MimeNode) => boolean);
    on(
      event: 'node',
      listener: (data: { node: MimeNode; decoder: Transform; encoder: Transform }) => void,
    ): this;
    on(event: string | symbol, listener: (...args: unknown[]) => void): this;
  }
}
