/**
 * MtaStsFetcher: fetches a domain's MTA-STS policy file,
 * `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and parses it.
 *
 * Postfix counterpart: none; postfix-mta-sts-resolver's fetcher plays this part next to
 * Postfix.
 *
 * The rules of RFC 8461 section 3.3: the server's certificate must chain to a trusted CA
 * (the given PEM CAs, else Node's bundle) and name `mta-sts.<domain>`; a redirect is not
 * followed (anything but 200 fails); the media type must be `text/plain`; HTTP caching is
 * not used. The body is read up to 64 KiB and the whole fetch is bounded by a timeout.
 * The host name is resolved through the injected Resolver (c-ares, never getaddrinfo),
 * and the port can be changed for tests.
 *
 * Does not: cache, look at the TXT record (mta-sts-cache.ts does both), or report
 * failures (TLSRPT, RFC 8460).
 *
 * SECURITY: the domain is checked to be a plain DNS name before it becomes part of a
 * URL; the response is bounded in time and size and decoded as strict UTF-8.
 *
 * STANDARDS: RFC 8461 section 3.3, RFC 6125 (name matching through node:tls).
 *
 * @module
 */

import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { builtin } from '../../builtin.js';
import type { Resolver } from '../../types.js';
import {
  isMtaStsHostName,
  MTA_STS_POLICY_MAX_BYTES,
  MtaStsError,
  type MtaStsPolicy,
  parseMtaStsPolicy,
} from './mta-sts-policy.js';

/**
 * Options of an MtaStsFetcher.
 *
 * @example
 * ```ts
 * const fetcher = new MtaStsFetcher({ resolver: new DnsResolver(), timeoutMs: 10_000 } satisfies MtaStsFetcherOptions);
 * ```
 */
export interface MtaStsFetcherOptions {
  /** Resolves `mta-sts.<domain>` (A and AAAA). */
  readonly resolver: Resolver;
  /** Bound on the whole fetch, connect to last byte, in ms. @default 10000 */
  readonly timeoutMs?: number;
  /** Trusted CAs (PEM); undefined = Node's bundle. */
  readonly ca?: string | readonly string[];
  /** TCP port of the policy host; only tests need another one. @default 443 */
  readonly port?: number;
  /** Largest body accepted, in bytes. @default 65536 */
  readonly maxBytes?: number;
}

/**
 * The ASCII (punycode) form of a domain for MTA-STS, or `undefined` when it is not a
 * plain DNS name (an address literal, a single label, odd characters).
 *
 * @example
 * ```ts
 * mtaStsDomain('Example.COM.'); // 'example.com'
 * mtaStsDomain('[192.0.2.1]'); // undefined
 * ```
 */
export function mtaStsDomain(domain: string): string | undefined {
  const trimmed = domain.trim().replace(/\.$/, '');
  if (trimmed === '' || isIP(trimmed) !== 0 || /[\s/\\@[\]:?#%]/.test(trimmed)) return undefined;
  const ascii = domainToASCII(trimmed).toLowerCase();
  return isMtaStsHostName(ascii) ? ascii : undefined;
}

/**
 * Fetches and parses policy files over HTTPS.
 *
 * @example
 * ```ts
 * const fetcher = new MtaStsFetcher({ resolver });
 * const policy = await fetcher.fetch('example.com'); // throws MtaStsError on any failure
 * ```
 */
export class MtaStsFetcher {
  readonly #resolver: Resolver;
  readonly #timeoutMs: number;
  readonly #ca: string | string[] | undefined;
  readonly #port: number;
  readonly #maxBytes: number;

  constructor(options: MtaStsFetcherOptions) {
    this.#resolver = options.resolver;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#ca =
      typeof options.ca === 'string' || options.ca === undefined ? options.ca : [...options.ca];
    this.#port = options.port ?? 443;
    this.#maxBytes = options.maxBytes ?? MTA_STS_POLICY_MAX_BYTES;
    if (!Number.isInteger(this.#port) || this.#port < 1 || this.#port > 65535) {
      throw new RangeError(`MtaStsFetcher: port ${options.port} is not a TCP port (1-65535)`);
    }
  }

  /**
   * Fetches the policy of `domain`.
   *
   * @throws MtaStsError saying why there is no policy: DNS, TLS, HTTP status, media
   * type, size, timeout or syntax.
   */
  async fetch(domain: string): Promise<MtaStsPolicy> {
    const ascii = mtaStsDomain(domain);
    if (ascii === undefined) {
      throw new MtaStsError(`"${domain.slice(0, 100)}" is not a domain name MTA-STS applies to`);
    }
    const host = `mta-sts.${ascii}`;
    const body = await this.#get(host);
    try {
      return parseMtaStsPolicy(body);
    } catch (err) {
      if (err instanceof MtaStsError) {
        throw new MtaStsError(`https://${host}/.well-known/mta-sts.txt: ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  #get(host: string): Promise<string> {
    const url = `https://${host}/.well-known/mta-sts.txt`;
    const fail = (why: string, cause?: unknown): MtaStsError =>
      new MtaStsError(`${url}: ${why}`, cause === undefined ? undefined : { cause });
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const done = (err: MtaStsError | undefined, text?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(text ?? '');
      };
      const req = builtin('https').request({
        host,
        port: this.#port,
        path: '/.well-known/mta-sts.txt',
        method: 'GET',
        servername: host,
        rejectUnauthorized: true,
        ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
        // A fresh connection each time: no pooled session outlives the fetch.
        agent: false,
        lookup: (hostname, options, callback) => this.#lookup(hostname, options, callback),
        headers: { Accept: 'text/plain', 'Accept-Encoding': 'identity', Connection: 'close' },
      });
      timer = setTimeout(
        () => done(fail(`no complete answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      timer.unref?.();
      req.on('error', (err) => done(fail(describe(err), err)));
      req.on('response', (res) => {
        // RFC 8461 section 3.3: only 200 counts, and 3xx redirects are never followed.
        if (res.statusCode !== 200) {
          const where = res.statusCode && res.statusCode >= 300 && res.statusCode < 400;
          res.resume();
          done(
            fail(
              `HTTP status ${res.statusCode}${where ? ' (redirects are not followed)' : ''}; only 200 is a policy`,
            ),
          );
          return;
        }
        const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'text/plain') {
          res.resume();
          done(fail(`media type "${type.slice(0, 60)}" is not text/plain`));
          return;
        }
        const encoding = (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
        if (encoding !== 'identity') {
          res.resume();
          done(fail(`content encoding "${encoding.slice(0, 30)}" was not asked for`));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? '0');
        if (declared > this.#maxBytes) {
          res.resume();
          done(fail(`policy of ${declared} bytes is larger than ${this.#maxBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size > this.#maxBytes) {
            done(fail(`policy is larger than ${this.#maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => done(fail(describe(err), err)));
        res.on('aborted', () => done(fail('connection closed before the end of the policy')));
        res.on('end', () => {
          if (!res.complete) {
            done(fail('connection closed before the end of the policy'));
            return;
          }
          try {
            const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
            done(undefined, text);
          } catch (err) {
            done(fail('policy is not valid UTF-8', err));
          }
        });
      });
      req.end();
    });
  }

  /** `net.connect`'s lookup hook, answered by the Resolver. */
  #lookup(
    hostname: string,
    options: LookupOptions,
    callback: (
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ): void {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const want4 = family !== 6;
    const want6 = family !== 4;
    const none = async (): Promise<string[]> => [];
    Promise.allSettled([
      want4 ? this.#resolver.resolve4(hostname) : none(),
      want6 ? this.#resolver.resolve6(hostname) : none(),
    ]).then(([v4, v6]) => {
      const list: LookupAddress[] = [
        ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
        ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
      ];
      if (list.length === 0) {
        const err: NodeJS.ErrnoException = Object.assign(
          new Error(`no address found for ${hostname}`),
          { code: 'ENOTFOUND', hostname },
        );
        callback(err, '');
        return;
      }
      if (options.all) callback(null, list);
      else callback(null, list[0]!.address, list[0]!.family);
    });
  }
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
