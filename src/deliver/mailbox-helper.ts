/**
 * mailbox-helper: the process that writes mailboxes and destination files, and reads
 * .forward and :include: files, with one user's rights.
 *
 * Postfix counterpart: the set_eugid() sections of local(8) (mailbox.c, maildir.c,
 * file.c, open_as() in dotforward.c and include.c). Node cannot switch users per call,
 * so the server (running as root) starts this entry point as
 * `node mailbox-helper.js UID GID [USER]`; before it reads a byte of input it sets the
 * supplementary groups (initgroups for USER, else only GID), then the gid, then the uid,
 * checks that root cannot be regained, and announces itself with READY. It then serves
 * one request at a time (mailbox-helper-protocol.ts) until its input ends:
 * - `maildir`: checks the directories on the way (safe-directory.ts) and delivers the
 *   bytes that follow with MaildirWriter;
 * - `mbox`: the same checks, then MboxWriter (dotlock, O_NOFOLLOW, truncate back on
 *   failure);
 * - `read`: opens a file with O_NOFOLLOW and returns its status and text.
 * SIGTERM aborts the request in progress (the writers clean up) and ends the process
 * after its result.
 *
 * Does not: decide whose rights to use, format messages (the server sends mailbox-ready
 * bytes), or map failures to delivery outcomes (mailbox-delivery.ts does).
 *
 * SECURITY: refuses to run as root or to start unless it is root; exits on any input
 * that does not follow the protocol. Files are created 0600, directories 0700 (umask
 * 077). The process is not dumpable after the switch, so the user cannot attach to it.
 *
 * @module
 */

import path from 'node:path';
import { errorMessage } from '../util/error-message.js';
import { LockBusyError } from './dotlock.js';
import { readTargetFile } from './forward-file.js';
import {
  FRAME,
  type Frame,
  FrameDecoder,
  type HelperReady,
  type HelperRequest,
  type HelperResult,
  jsonFrame,
  ProtocolError,
  parseRequest,
} from './mailbox-helper-protocol.js';
import { MaildirWriter } from './maildir.js';
import { MailboxRefusedError, MboxWriter } from './mbox.js';
import { checkSafeDirectory, UnsafePathError } from './safe-directory.js';

/** sysexits: EX_SOFTWARE, EX_TEMPFAIL. */
const EX_SOFTWARE = 70;
const EX_TEMPFAIL = 75;

function die(message: string, status = EX_TEMPFAIL): never {
  process.stderr.write(`postern mailbox helper: ${message}\n`);
  process.exit(status);
}

/** Becomes the user named by argv; never returns as root. */
function switchUser(args: readonly string[]): HelperReady {
  const [uidText = '', gidText = '', user = ''] = args;
  if (!/^\d{1,10}$/.test(uidText) || !/^\d{1,10}$/.test(gidText))
    die('usage: mailbox-helper UID GID [USER]', 64);
  const uid = Number(uidText);
  const gid = Number(gidText);
  if (uid === 0) die('refusing to deliver as root');
  if (user !== '' && !/^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}\$?$/.test(user)) die('bad user name', 64);
  if (process.getuid?.() !== 0 || !process.setuid || !process.setgid || !process.setgroups)
    die('must be started as root');
  try {
    // initgroups is Node's (POSIX only) but missing from @types/node.
    const initgroups = (process as { initgroups?: (user: string, extra: number) => void })
      .initgroups;
    if (user !== '' && initgroups) initgroups.call(process, user, gid);
    else process.setgroups([gid]);
    process.setgid(gid);
    process.setuid(uid);
  } catch (err) {
    die(`cannot switch to uid ${uid} gid ${gid}: ${errorMessage(err)}`);
  }
  if (
    process.getuid() !== uid ||
    process.geteuid?.() !== uid ||
    process.getgid?.() !== gid ||
    process.getegid?.() !== gid
  )
    die('the switch of user did not take');
  let regained = false;
  try {
    process.setuid(0);
    regained = true;
  } catch {
    // Expected: root is gone for good.
  }
  if (regained) die('root could be regained; refusing to go on');
  process.umask(0o077);
  process.chdir('/');
  return { uid, gid, groups: process.getgroups?.() ?? [gid] };
}

async function* frames(input: AsyncIterable<Buffer>): AsyncGenerator<Frame> {
  const decoder = new FrameDecoder();
  for await (const chunk of input) yield* decoder.push(chunk);
  if (decoder.pending) throw new ProtocolError('input ends inside a frame');
}

/** The DATA frames of one request, up to its END. */
class RequestBody implements AsyncIterable<Buffer> {
  ended = false;
  readonly #input: AsyncIterator<Frame>;

  constructor(input: AsyncIterator<Frame>) {
    this.#input = input;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    while (!this.ended) {
      const payload = await this.#next();
      if (payload !== undefined) yield payload;
    }
  }

  /** Reads what the writer left unread, up to END. */
  async drain(): Promise<void> {
    while (!this.ended) await this.#next();
  }

  async #next(): Promise<Buffer | undefined> {
    const next = await this.#input.next();
    if (next.done) throw new Error('the server closed the connection in mid-message');
    if (next.value.type === FRAME.END) {
      this.ended = true;
      return undefined;
    }
    if (next.value.type !== FRAME.DATA) throw new ProtocolError('unexpected frame in a message');
    return next.value.payload;
  }
}

const maildirs = new Map<string, MaildirWriter>();

async function perform(
  request: HelperRequest,
  body: RequestBody,
  uid: number,
  signal: AbortSignal,
): Promise<HelperResult> {
  switch (request.op) {
    case 'maildir': {
      await checkSafeDirectory(request.path, uid, request.trustedBase);
      let writer = maildirs.get(request.hostname);
      if (!writer) {
        writer = new MaildirWriter({ hostname: request.hostname });
        maildirs.set(request.hostname, writer);
      }
      const file = await writer.deliver(request.path, Buffer.alloc(0), body, {
        signal,
        ...(request.folder ? { folder: true } : {}),
      });
      return { ok: true, op: 'maildir', path: file };
    }
    case 'mbox': {
      await checkSafeDirectory(path.dirname(request.path), uid, request.trustedBase);
      const writer = new MboxWriter({ sizeLimit: request.sizeLimit, lock: request.lock });
      await writer.deliver(request.path, body, {
        signal,
        ...(request.lockMayFail ? { lockMayFail: true } : {}),
      });
      return { ok: true, op: 'mbox' };
    }
    case 'read':
      return { ok: true, op: 'read', file: await readTargetFile(request.path) };
  }
}

function describe(err: unknown, signal: AbortSignal): HelperResult {
  const message = errorMessage(err);
  if (signal.aborted) return { ok: false, kind: 'aborted', message: 'delivery interrupted' };
  if (err instanceof MailboxRefusedError)
    return { ok: false, kind: 'refused', enhanced: err.enhanced, message };
  if (err instanceof LockBusyError) return { ok: false, kind: 'busy', message };
  if (err instanceof UnsafePathError) return { ok: false, kind: 'unsafe', message };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code))
    return { ok: false, kind: 'errno', code, message };
  return { ok: false, kind: 'error', message };
}

async function serve(identity: HelperReady): Promise<void> {
  let current: AbortController | undefined;
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
    if (current) current.abort();
    else process.exit(0);
  });
  process.stdout.write(jsonFrame(FRAME.READY, identity));
  const input = frames(process.stdin)[Symbol.asyncIterator]();
  for (;;) {
    const next = await input.next();
    if (next.done) return;
    if (next.value.type !== FRAME.BEGIN) throw new ProtocolError('expected a request');
    const request = parseRequest(next.value.payload);
    const controller = new AbortController();
    current = controller;
    const body = new RequestBody(input);
    let result: HelperResult;
    try {
      result = await perform(request, body, identity.uid, controller.signal);
    } catch (err) {
      result = describe(err, controller.signal);
    }
    try {
      await body.drain();
    } catch (err) {
      // The server is gone or broke the protocol: whatever was written is cleaned up.
      if (err instanceof ProtocolError) throw err;
      return;
    }
    process.stdout.write(jsonFrame(FRAME.RESULT, result));
    current = undefined;
    if (stopping) return;
  }
}

const identity = switchUser(process.argv.slice(2));
serve(identity).then(
  () => process.exit(0),
  (err: unknown) => die(errorMessage(err), EX_SOFTWARE),
);
