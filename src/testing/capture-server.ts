/**
 * CaptureServer: the HTTP side of `postern capture` and `createTestMta({ http })` — a
 * REST API compatible with Mailpit's API v1 for what tests use, a live event stream,
 * and a small web UI at `/`.
 *
 * Postfix counterpart: none; Mailpit is the model, so that its clients (the `mailpit-api`
 * npm package, language bindings, CI scripts) work unchanged. Routes:
 *   GET  /api/v1/info, /api/v1/webui, /api/v1/tags
 *   GET  /api/v1/messages?start&limit      PUT (read status)   DELETE ({"IDs":[...]} or all)
 *   GET  /api/v1/search?query&start&limit  DELETE /api/v1/search?query
 *   GET  /api/v1/message/{ID|latest}[/headers|/raw|/part/{PartID}]
 *   GET  /api/v1/chaos                     PUT /api/v1/chaos
 *   GET  /view/{ID|latest}.html, .txt      GET /api/events (server-sent events)
 *   GET  /, /capture-ui.js, /capture-ui.css
 *
 * Does not: Mailpit's send, release, tags, HTML/link/SpamAssassin checks, thumbnails,
 * basic auth or its websocket (the UI follows `/api/events` as server-sent events).
 *
 * SECURITY: everything shown is hostile mail. The UI inserts message data as text only;
 * a message's HTML is served with a Content-Security-Policy that sandboxes it (no
 * scripts, no forms, no plugins) and lets it load nothing but inline styles, its own
 * `cid:` parts and data: images — remote content stays blocked — and the UI shows it in
 * a sandboxed iframe. Parts are downloads (`attachment`, nosniff) except images. A
 * request whose Host is not a loopback name or the bound address is refused (DNS
 * rebinding), and so is a state-changing request whose Origin is another site (CSRF).
 * Request bodies are bounded. Bind a loopback address unless the network is trusted.
 *
 * @module
 */

import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PosternError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseListen } from '../mta/mta-config.js';
import { errorMessage } from '../util/error-message.js';
import { POSTERN_VERSION } from '../util/package-version.js';
import type { CaptureInbox, InboxEvent } from './capture-inbox.js';
import { UI_CSS, UI_HTML, UI_JS } from './capture-ui.js';
import type { CapturedMessage } from './captured-message.js';
import type { FaultPlan } from './faults.js';
import { Chaos } from './mailpit-chaos.js';
import { compileSearch } from './mailpit-search.js';
import { listItem, messageHeaders, messageSummary } from './mailpit-shapes.js';

/** Largest request body read (JSON of IDs or chaos triggers). */
const MAX_BODY = 1024 * 1024;
/** Unsent event-stream bytes after which a reader is dropped. */
const MAX_STREAM_BACKLOG = 1024 * 1024;

/** `HOST:PORT` (`[::1]:8025`) as host and port; throws a ConfigError naming `what`. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  return parseListen(text, what);
}

/** What a capture server serves. */
export interface CaptureServerOptions {
  readonly inbox: CaptureInbox;
  readonly faults: FaultPlan;
  /** The SMTP listener, for the UI's header line. */
  readonly smtp: { readonly host: string; readonly port: number };
  readonly logger?: Logger;
}

class HttpError extends PosternError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('POSTERN_ERR_HTTP', message);
  }
}

function isLoopbackHost(host: string): boolean {
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    host === '::1' ||
    host === '[::1]'
  );
}

/** The host part of a Host header or an Origin URL, lower-cased, brackets kept for IPv6. */
function hostOf(value: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(value.trim().toLowerCase());
  return m ? m[1]! : '';
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
} as const;

/** The policy for a message's own HTML: nothing runs, nothing remote loads. */
const MESSAGE_CSP =
  "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
const UI_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Mailpit's HTML view points `cid:` images at the message's parts; so does this one. */
function linkInlineParts(m: CapturedMessage, html: string): string {
  return html.replace(/\bcid:([^"'\s)>]+)/gi, (whole, cid: string) => {
    let id = cid;
    try {
      id = decodeURIComponent(cid);
    } catch {
      // Not URI-encoded: taken as it is.
    }
    const part = m.attachments.find((a) => a.contentId === id);
    return part ? `/api/v1/message/${m.queueId}/part/${part.partId}` : whole;
  });
}

/** The capture server's HTTP listener. */
export class CaptureServer {
  readonly #inbox: CaptureInbox;
  readonly #chaos: Chaos;
  readonly #smtp: { host: string; port: number };
  readonly #logger: Logger | undefined;
  readonly #server: http.Server;
  readonly #streams = new Set<http.ServerResponse>();
  readonly #unsubscribe: () => void;
  #bound: { host: string; port: number } | undefined;
  readonly #started = Date.now();
  #accepted = 0;
  #acceptedSize = 0;
  #deleted = 0;

  constructor(options: CaptureServerOptions) {
    this.#inbox = options.inbox;
    this.#chaos = new Chaos(options.faults);
    this.#smtp = options.smtp;
    this.#logger = options.logger;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#unsubscribe = this.#inbox.onChange((e) => this.#broadcast(e));
  }

  /** `http://host:port` once listening. */
  get url(): string | undefined {
    if (!this.#bound) return undefined;
    const h = this.#bound.host.includes(':') ? `[${this.#bound.host}]` : this.#bound.host;
    return `http://${h}:${this.#bound.port}`;
  }

  /** Binds `host:port` (port 0: a free one). */
  async listen(host: string, port: number): Promise<void> {
    this.#server.listen({ host, port });
    try {
      await once(this.#server, 'listening');
    } catch (err) {
      throw new Error(
        `cannot listen on ${host}:${port} for the capture server: ${errorMessage(err)}`,
      );
    }
    const address = this.#server.address() as AddressInfo;
    this.#bound = { host, port: address.port };
    this.#logger?.info('capture', undefined, `web UI and API on ${this.url}`);
  }

  /** Ends the event streams and stops listening. */
  async close(): Promise<void> {
    this.#unsubscribe();
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    if (!this.#server.listening) return;
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeAllConnections();
    await closed;
  }

  #broadcast(event: InboxEvent): void {
    if (event.type === 'new') {
      this.#accepted++;
      this.#acceptedSize += event.message.raw.length;
    } else if (event.type === 'delete') this.#deleted += event.ids.length;
    if (this.#streams.size === 0) return;
    const data =
      event.type === 'new'
        ? listItem(event.message, false)
        : event.type === 'delete'
          ? { IDs: event.ids }
          : {};
    const frame = `event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.#streams) {
      // A reader that stopped reading is dropped rather than buffered for without end;
      // its EventSource reconnects and reloads the list.
      if (res.writableLength > MAX_STREAM_BACKLOG) res.destroy();
      else res.write(frame);
    }
  }

  #checkHost(req: http.IncomingMessage): void {
    const bound = this.#bound?.host ?? '';
    const anyAddress = bound === '0.0.0.0' || bound === '::' || bound === '';
    const host = hostOf(req.headers.host ?? '');
    const boundName = bound.includes(':') ? `[${bound}]` : bound;
    if (!anyAddress && !isLoopbackHost(host) && host !== boundName) {
      throw new HttpError(
        403,
        `Host "${req.headers.host ?? ''}" is not served here; use ${this.url ?? 'the bound address'}`,
      );
    }
    const origin = req.headers.origin;
    if (req.method !== 'GET' && req.method !== 'HEAD' && origin !== undefined) {
      let originHost = '';
      try {
        originHost = new URL(origin).host.toLowerCase();
      } catch {
        // An unreadable Origin is another site.
      }
      if (originHost !== (req.headers.host ?? '').toLowerCase())
        throw new HttpError(403, `requests from ${origin} may not change this server`);
    }
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      this.#checkHost(req);
      const url = new URL(req.url ?? '/', 'http://capture.invalid');
      await this.#route(req, res, url);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500)
        this.#logger?.warning(
          'capture',
          undefined,
          `HTTP ${req.method} ${req.url}: ${String(err)}`,
        );
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.#send(res, status, 'text/plain; charset=utf-8', errorMessage(err));
    }
  }

  #send(
    res: http.ServerResponse,
    status: number,
    type: string,
    body: string | Buffer,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, ...headers });
    res.end(body);
  }

  #json(res: http.ServerResponse, value: unknown): void {
    this.#send(res, 200, 'application/json', JSON.stringify(value));
  }

  #ok(res: http.ServerResponse): void {
    this.#send(res, 200, 'text/plain; charset=utf-8', 'ok');
  }

  async #body(req: http.IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, `the body is not JSON: ${errorMessage(err)}`);
    }
  }

  /** A message by ID, or the newest for `latest`; 404 otherwise. */
  #message(id: string): CapturedMessage {
    const messages = this.#inbox.messages;
    const m = id === 'latest' ? messages[messages.length - 1] : this.#inbox.get(id);
    if (!m) throw new HttpError(404, 'Not found');
    return m;
  }

  /** A page of messages, newest first, as Mailpit's MessagesSummary. */
  #page(url: URL, matching: readonly CapturedMessage[]): unknown {
    const start = Math.max(0, Number.parseInt(url.searchParams.get('start') ?? '0', 10) || 0);
    const limitParam = Number.parseInt(url.searchParams.get('limit') ?? '50', 10);
    const limit = Number.isNaN(limitParam) || limitParam < 0 ? 50 : limitParam;
    const all = this.#inbox.messages;
    const newest = [...matching].reverse();
    const unread = (list: readonly CapturedMessage[]) =>
      list.filter((m) => !this.#inbox.isRead(m.queueId)).length;
    const page = newest.slice(start, start + limit);
    return {
      total: all.length,
      unread: unread(all),
      count: page.length,
      messages_count: matching.length,
      messages_unread: unread(matching),
      start,
      tags: [],
      messages: page.map((m) => listItem(m, this.#inbox.isRead(m.queueId))),
    };
  }

  #search(url: URL): CapturedMessage[] {
    const query = (url.searchParams.get('query') ?? '').trim();
    if (query === '') throw new HttpError(400, 'Error: no search query');
    const predicate = compileSearch(query);
    return this.#inbox.messages.filter((m) => predicate(m, this.#inbox.isRead(m.queueId)));
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const get = method === 'GET' || method === 'HEAD';
    if (get && path === '/') {
      this.#send(res, 200, 'text/html; charset=utf-8', UI_HTML, {
        'Content-Security-Policy': UI_CSP,
      });
      return;
    }
    if (get && path === '/capture-ui.js') {
      this.#send(res, 200, 'text/javascript; charset=utf-8', UI_JS);
      return;
    }
    if (get && path === '/capture-ui.css') {
      this.#send(res, 200, 'text/css; charset=utf-8', UI_CSS);
      return;
    }
    if (method === 'GET' && path === '/api/events') {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': 'text/event-stream; charset=utf-8',
        Connection: 'keep-alive',
      });
      res.write(`: postern capture\n\n`);
      this.#streams.add(res);
      res.on('close', () => this.#streams.delete(res));
      return;
    }
    if (get && path === '/api/v1/info') {
      const all = this.#inbox.messages;
      this.#json(res, {
        Version: `postern-${POSTERN_VERSION}`,
        LatestVersion: '',
        Database: '',
        DatabaseSize: 0,
        Messages: all.length,
        Unread: all.filter((m) => !this.#inbox.isRead(m.queueId)).length,
        Tags: {},
        RuntimeStats: {
          Memory: process.memoryUsage().rss,
          MessagesDeleted: this.#deleted,
          SMTPAccepted: this.#accepted,
          SMTPAcceptedSize: this.#acceptedSize,
          SMTPRejected: 0,
          SMTPIgnored: 0,
          Uptime: Math.floor((Date.now() - this.#started) / 1000),
        },
      });
      return;
    }
    if (get && path === '/api/v1/webui') {
      this.#json(res, {
        Label: `Postern capture (SMTP ${this.#smtp.host}:${this.#smtp.port})`,
        MessageRelay: {
          Enabled: false,
          SMTPServer: '',
          AllowedRecipients: '',
          BlockedRecipients: '',
          OverrideFrom: '',
          ReturnPath: '',
          PreserveMessageIDs: false,
          RecipientAllowlist: '',
        },
        SpamAssassin: false,
        ChaosEnabled: true,
        DuplicatesIgnored: false,
        HideDeleteAllButton: false,
      });
      return;
    }
    if (get && path === '/api/v1/tags') {
      this.#json(res, []);
      return;
    }
    if (path === '/api/v1/messages') {
      if (get) return this.#json(res, this.#page(url, this.#inbox.messages));
      if (method === 'DELETE') {
        const body = (await this.#body(req)) as { IDs?: unknown } | undefined;
        const ids = Array.isArray(body?.IDs) ? body.IDs.map(String) : [];
        if (ids.length === 0) this.#inbox.clear();
        else this.#inbox.remove(ids);
        return this.#ok(res);
      }
      if (method === 'PUT') {
        const body = ((await this.#body(req)) ?? {}) as {
          Read?: unknown;
          IDs?: unknown;
          Search?: unknown;
        };
        const ids = Array.isArray(body.IDs) ? body.IDs.map(String) : [];
        const search = typeof body.Search === 'string' ? body.Search : '';
        if (ids.length > 0 && search !== '')
          throw new HttpError(400, 'You may specify either IDs or a search query, not both');
        const chosen =
          search !== ''
            ? this.#search(new URL(`/?query=${encodeURIComponent(search)}`, url)).map(
                (m) => m.queueId,
              )
            : ids.length > 0
              ? ids
              : undefined;
        this.#inbox.setRead(body.Read === true, chosen);
        return this.#ok(res);
      }
    }
    if (path === '/api/v1/search') {
      if (get) return this.#json(res, this.#page(url, this.#search(url)));
      if (method === 'DELETE') {
        this.#inbox.remove(this.#search(url).map((m) => m.queueId));
        return this.#ok(res);
      }
    }
    if (path === '/api/v1/chaos') {
      if (get) return this.#json(res, this.#chaos.triggers);
      if (method === 'PUT') {
        try {
          return this.#json(res, this.#chaos.set((await this.#body(req)) ?? {}));
        } catch (err) {
          if (err instanceof RangeError) throw new HttpError(400, err.message);
          throw err;
        }
      }
    }
    const view = /^\/view\/([A-Za-z0-9]+)\.(html|txt)$/.exec(path);
    if (get && view) {
      const m = this.#message(view[1]!);
      if (view[2] === 'txt') return this.#send(res, 200, 'text/plain; charset=utf-8', m.text ?? '');
      return this.#send(res, 200, 'text/html; charset=utf-8', linkInlineParts(m, m.html ?? ''), {
        'Content-Security-Policy': MESSAGE_CSP,
      });
    }
    const one = /^\/api\/v1\/message\/([A-Za-z0-9]+)(?:\/(headers|raw|part\/([0-9.]+)))?$/.exec(
      path,
    );
    if (get && one) {
      const m = this.#message(one[1]!);
      if (one[2] === undefined) {
        this.#inbox.setRead(true, [m.queueId]);
        return this.#json(res, messageSummary(m));
      }
      if (one[2] === 'headers') return this.#json(res, messageHeaders(m));
      if (one[2] === 'raw') {
        const dl = url.searchParams.get('dl') === '1';
        return this.#send(res, 200, 'text/plain; charset=utf-8', m.raw, {
          ...(dl ? { 'Content-Disposition': `attachment; filename="${m.queueId}.eml"` } : {}),
        });
      }
      const part = m.attachments.find((a) => a.partId === one[3]);
      if (!part) throw new HttpError(404, 'Not found');
      const type = part.contentType.toLowerCase();
      // Images render inline (the HTML view needs them); everything else is a download,
      // and nothing is served as a document of this origin.
      const image = type.startsWith('image/') && type !== 'image/svg+xml';
      const name = (part.filename ?? part.contentId ?? `part-${part.partId}`).replace(
        /[^\w.@+-]/g,
        '_',
      );
      return this.#send(res, 200, image ? type : 'application/octet-stream', part.content, {
        'Content-Disposition': `${image ? 'inline' : 'attachment'}; filename="${name}"`,
        'Content-Security-Policy': "sandbox; default-src 'none'",
      });
    }
    if (
      path === '/api/v1/messages' ||
      path === '/api/v1/search' ||
      path === '/api/v1/chaos' ||
      one ||
      view
    )
      throw new HttpError(405, `${method} is not allowed on ${path}`);
    throw new HttpError(404, 'Not found');
  }
}
