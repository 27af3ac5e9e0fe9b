/**
 * The mailbox helper's protocol: length-prefixed frames on the helper's stdin (from
 * the server) and stdout (to the server), and the requests and results they carry.
 *
 * Postfix counterpart: none — local(8) switches its effective uid in-process
 * (set_eugid), which Node cannot do per call; Postern runs the writes in a helper
 * process (mailbox-helper.ts) and talks to it with this protocol.
 *
 * A frame is one type byte, a 32-bit big-endian payload length and the payload. The
 * server sends BEGIN (a JSON request), DATA frames (message bytes, already in mailbox
 * form), then END; the helper answers each request with one RESULT (JSON). The helper
 * announces itself with READY (its uid, gid and groups) after switching users. One
 * request at a time per helper; a pipe's flow control is the backpressure.
 *
 * Does not: spawn or pool helpers (mailbox-helper-pool.ts), write anything.
 *
 * SECURITY: both sides bound every frame and validate every request and result; a
 * result comes from a process running as a local user and is treated as untrusted
 * (texts are made printable and shortened before they reach a reply).
 *
 * @module
 */

import { PosternError } from '../errors.js';
import { TARGET_FILE_LIMIT, type TargetFile } from './forward-file.js';

/** Frame types. */
export const FRAME = Object.freeze({
  BEGIN: 1,
  DATA: 2,
  END: 3,
  READY: 16,
  RESULT: 17,
});

const HEADER = 5;
/** Largest DATA payload the server sends. */
export const DATA_CHUNK = 64 * 1024;
/** Largest frame either side accepts (a RESULT may carry a 1 MiB file, base64). */
export const FRAME_LIMIT = 4 * 1024 * 1024;

/** One decoded frame. */
export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

/** A frame with its header. */
export function encodeFrame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt8(type, 0);
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, HEADER);
  return out;
}

/** A frame carrying JSON. */
export function jsonFrame(type: number, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** The input does not follow the protocol. */
export class ProtocolError extends PosternError {
  constructor(message: string) {
    super('POSTERN_ERR_HELPER_PROTOCOL', message);
    this.name = 'ProtocolError';
  }
}

/**
 * Splits a byte stream into frames; bounded by `limit` bytes per frame.
 */
export class FrameDecoder {
  readonly #limit: number;
  #buffer: Buffer = Buffer.alloc(0);

  constructor(limit = FRAME_LIMIT) {
    this.#limit = limit;
  }

  /** The complete frames `chunk` finishes. @throws ProtocolError on an oversized frame. */
  push(chunk: Buffer): Frame[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const frames: Frame[] = [];
    while (this.#buffer.length >= HEADER) {
      const length = this.#buffer.readUInt32BE(1);
      if (length > this.#limit)
        throw new ProtocolError(`frame of ${length} bytes exceeds ${this.#limit}`);
      if (this.#buffer.length < HEADER + length) break;
      frames.push({
        type: this.#buffer.readUInt8(0),
        payload: this.#buffer.subarray(HEADER, HEADER + length),
      });
      this.#buffer = this.#buffer.subarray(HEADER + length);
    }
    return frames;
  }

  /** Bytes of an unfinished frame are pending. */
  get pending(): boolean {
    return this.#buffer.length > 0;
  }
}

/** Dot-lock settings passed to the helper's MboxWriter. */
export interface LockSettings {
  readonly attempts: number;
  readonly delayMs: number;
  readonly staleMs: number;
}

/** What the server asks a helper to do. */
export type HelperRequest =
  | {
      readonly op: 'maildir';
      /** The Maildir directory. */
      readonly path: string;
      /** `myhostname`, for file names. */
      readonly hostname: string;
      /** A Maildir++ folder (maildirfolder marker). */
      readonly folder?: boolean;
      /** Directories at or above this one are not checked (the mail spool). */
      readonly trustedBase?: string;
    }
  | {
      readonly op: 'mbox';
      readonly path: string;
      readonly sizeLimit: number;
      readonly lock: LockSettings;
      /** A file destination: go on without the dotlock when it cannot be created. */
      readonly lockMayFail?: boolean;
      readonly trustedBase?: string;
    }
  | {
      /** Read a .forward or :include: file (no DATA). */
      readonly op: 'read';
      readonly path: string;
    };

/** How a helper request ended. */
export type HelperResult =
  | { readonly ok: true; readonly op: 'maildir'; readonly path: string }
  | { readonly ok: true; readonly op: 'mbox' }
  | { readonly ok: true; readonly op: 'read'; readonly file: TargetFile }
  | {
      readonly ok: false;
      /**
       * `refused`: the mailbox refused (bounce with `enhanced`); `busy`: the lock is held;
       * `unsafe`: a directory on the way is not safe; `errno`: a file-system error
       * (`code`); `aborted`; `error`: anything else.
       */
      readonly kind: 'refused' | 'busy' | 'unsafe' | 'errno' | 'aborted' | 'error';
      readonly message: string;
      readonly code?: string;
      readonly enhanced?: string;
    };

/** The helper's greeting after it switched users. */
export interface HelperReady {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

const isString = (v: unknown, max = 4096): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max && !v.includes('\0');
const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isAbsolute = (v: unknown): v is string => isString(v) && v.startsWith('/');

function parseJson(payload: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ProtocolError('payload is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ProtocolError('payload is not a JSON object');
  return value as Record<string, unknown>;
}

/** Validates a BEGIN payload. @throws ProtocolError */
export function parseRequest(payload: Buffer): HelperRequest {
  const v = parseJson(payload);
  const trusted =
    v.trustedBase === undefined
      ? {}
      : isAbsolute(v.trustedBase)
        ? { trustedBase: v.trustedBase }
        : undefined;
  if (trusted === undefined) throw new ProtocolError('bad trustedBase');
  if (!isAbsolute(v.path)) throw new ProtocolError('bad path');
  switch (v.op) {
    case 'maildir':
      if (!isString(v.hostname, 255)) throw new ProtocolError('bad hostname');
      return {
        op: 'maildir',
        path: v.path,
        hostname: v.hostname,
        ...(v.folder === true ? { folder: true } : {}),
        ...trusted,
      };
    case 'mbox': {
      const lock = v.lock as Record<string, unknown> | null | undefined;
      if (
        !isCount(v.sizeLimit) ||
        typeof lock !== 'object' ||
        lock === null ||
        !isCount(lock.attempts) ||
        !isCount(lock.delayMs) ||
        !isCount(lock.staleMs)
      )
        throw new ProtocolError('bad mbox settings');
      return {
        op: 'mbox',
        path: v.path,
        sizeLimit: v.sizeLimit,
        lock: { attempts: lock.attempts, delayMs: lock.delayMs, staleMs: lock.staleMs },
        ...(v.lockMayFail === true ? { lockMayFail: true } : {}),
        ...trusted,
      };
    }
    case 'read':
      return { op: 'read', path: v.path };
    default:
      throw new ProtocolError('unknown op');
  }
}

const KINDS = new Set(['refused', 'busy', 'unsafe', 'errno', 'aborted', 'error']);

/** Printable, bounded text from the helper. */
export function helperText(v: unknown, max = 300): string {
  const text = typeof v === 'string' ? v : '';
  const clean = text.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** Validates a RESULT payload for a request of `op`. @throws ProtocolError */
export function parseResult(payload: Buffer, op: HelperRequest['op']): HelperResult {
  const v = parseJson(payload);
  if (v.ok === false) {
    if (typeof v.kind !== 'string' || !KINDS.has(v.kind)) throw new ProtocolError('bad kind');
    const enhanced =
      typeof v.enhanced === 'string' && /^5\.\d{1,3}\.\d{1,3}$/.test(v.enhanced)
        ? { enhanced: v.enhanced }
        : {};
    const code =
      typeof v.code === 'string' && /^E[A-Z0-9]{1,20}$/.test(v.code) ? { code: v.code } : {};
    return {
      ok: false,
      kind: v.kind as 'error',
      message: helperText(v.message),
      ...enhanced,
      ...code,
    };
  }
  if (v.ok !== true || v.op !== op) throw new ProtocolError('result does not match the request');
  if (op === 'maildir') {
    if (!isAbsolute(v.path)) throw new ProtocolError('bad maildir path');
    return { ok: true, op, path: v.path };
  }
  if (op === 'mbox') return { ok: true, op };
  const f = v.file as Record<string, unknown> | null | undefined;
  if (
    typeof f !== 'object' ||
    f === null ||
    !isCount(f.uid) ||
    !isCount(f.mode) ||
    !isCount(f.nlink) ||
    !isCount(f.size) ||
    typeof f.regular !== 'boolean' ||
    (f.text !== undefined && (typeof f.text !== 'string' || f.text.length > TARGET_FILE_LIMIT * 2))
  )
    throw new ProtocolError('bad read result');
  return {
    ok: true,
    op,
    file: {
      uid: f.uid,
      mode: f.mode,
      nlink: f.nlink,
      size: f.size,
      regular: f.regular,
      ...(typeof f.text === 'string' ? { text: f.text } : {}),
    },
  };
}

/** Validates a READY payload. @throws ProtocolError */
export function parseReady(payload: Buffer): HelperReady {
  const v = parseJson(payload);
  if (
    !isCount(v.uid) ||
    !isCount(v.gid) ||
    !Array.isArray(v.groups) ||
    v.groups.length > 65536 ||
    !v.groups.every(isCount)
  )
    throw new ProtocolError('bad READY');
  return { uid: v.uid, gid: v.gid, groups: v.groups as number[] };
}
