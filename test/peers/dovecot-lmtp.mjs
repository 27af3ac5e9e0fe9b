/**
 * A throwaway Dovecot LMTP server for interop tests: its own dovecot.conf, passwd-file
 * and Maildirs under a temporary directory, LMTP on a free 127.0.0.1 port, no other
 * protocol. Users are looked up by local part (`lena@any.domain` is user `lena`); an
 * unknown user gets `550 5.1.1` at RCPT, each known user one reply after DATA.
 *
 * Counterpart: the LMTP server a Postfix operator points lmtp(8) or
 * virtual_transport at (Dovecot's lmtp service with a passwd-file userdb).
 *
 * Does not do: TLS, authentication, IMAP/POP3, quota, Sieve.
 *
 * SECURITY: the dovecot master starts as root; mail is stored as `nobody`, which owns
 * the Maildirs and nothing else.
 *
 * @module
 */

import { execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  adoptDaemon,
  findCommand,
  groupMembers,
  isRoot,
  readPidFile,
  retireDaemon,
  userIds,
} from './host.mjs';
import { freePort, waitForPort } from './loopback.mjs';

const run = promisify(execFile);

/**
 * Why a Dovecot LMTP server cannot run here (what is missing and how to get it), or
 * undefined when it can.
 */
export function dovecotProblem() {
  if (!findCommand('dovecot')) {
    return 'Dovecot is not installed; install it with: apt-get install -y dovecot-lmtpd';
  }
  if (!isRoot()) return 'the Dovecot master must be started as root; run this as root';
  if (!userIds('nobody')) return 'there is no `nobody` user to store mail as';
  return undefined;
}

/** dovecot.conf for a server rooted at `dir`, LMTP on 127.0.0.1:`port`. */
function dovecotConf(dir, port, owner) {
  return `# A private LMTP-only Dovecot; every path is under ${dir}.
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/log
protocols = lmtp
ssl = no
listen = 127.0.0.1
# The unprivileged processes and the mail files run as ${owner.name}.
default_login_user = ${owner.name}
default_internal_user = ${owner.name}
default_internal_group = ${owner.group}
mail_uid = ${owner.uid}
mail_gid = ${owner.gid}
first_valid_uid = 0
mail_location = maildir:${dir}/mail/%n/Maildir
# user@domain is looked up as "user", lower-cased.
auth_username_format = %Ln
passdb {
  driver = passwd-file
  args = ${dir}/users
}
userdb {
  driver = passwd-file
  args = ${dir}/users
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
}
lmtp_save_to_detail_mailbox = no
`;
}

/**
 * A Dovecot LMTP server. `start()` writes its files and runs it; `stop()` stops every
 * process of it and removes its directory.
 */
export class DovecotLmtp {
  /** Starts a server that knows `users` (local parts) and resolves once LMTP accepts. */
  static async start(users) {
    const problem = dovecotProblem();
    if (problem) throw new Error(problem);
    const d = new DovecotLmtp(await freePort());
    try {
      await d.#run(users);
    } catch (err) {
      await d.stop();
      throw err;
    }
    return d;
  }

  /** The server's temporary directory. */
  dir;
  /** The LMTP port on 127.0.0.1. */
  port;
  /** PID of the dovecot master while it runs (it leads the process group of the server). */
  masterPid = undefined;

  constructor(port) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'postern-dovecot-'));
    chmodSync(this.dir, 0o755);
  }

  /** The Maildir of `user` (its new/, cur/ and tmp/ appear with the first delivery). */
  maildir(user) {
    return join(this.dir, 'mail', user, 'Maildir');
  }

  async #run(users) {
    const ids = userIds('nobody');
    const group = (await run('id', ['-gn', 'nobody'])).stdout.trim();
    const owner = { name: 'nobody', group, ...ids };
    for (const d of ['run', 'state', 'mail']) mkdirSync(join(this.dir, d));
    chownSync(join(this.dir, 'mail'), ids.uid, ids.gid);
    // passwd-file: user:password:uid:gid:gecos:home
    await writeFile(
      join(this.dir, 'users'),
      users.map((u) => `${u}::${ids.uid}:${ids.gid}::${this.dir}/mail/${u}\n`).join(''),
    );
    const conf = join(this.dir, 'dovecot.conf');
    await writeFile(conf, dovecotConf(this.dir, this.port, owner));
    // dovecot forks its master into the background and exits; the master keeps the
    // standard streams it was given, so they go to a file rather than a pipe to us.
    const startLog = join(this.dir, 'start.log');
    const out = openSync(startLog, 'w');
    let code;
    try {
      code = await new Promise((resolve, reject) => {
        const p = spawn('dovecot', ['-c', conf], { stdio: ['ignore', out, out] });
        p.once('error', reject);
        p.once('exit', resolve);
      });
    } finally {
      closeSync(out);
    }
    if (code !== 0) {
      const said = readFileSync(startLog, 'utf8').trim();
      throw new Error(`Dovecot did not start (exit ${code}): ${said}${this.#logTail()}`);
    }
    this.masterPid = await readPidFile(join(this.dir, 'run', 'master.pid'));
    adoptDaemon(this.masterPid, this.dir);
    await waitForPort(this.port, 15_000, () =>
      groupMembers(this.masterPid).length === 0 ? `dovecot exited${this.#logTail()}` : undefined,
    );
  }

  /** Every process of the server: the dovecot master and the services it runs. */
  processes() {
    return this.masterPid ? groupMembers(this.masterPid) : [];
  }

  /** Stops every process of the server and removes its directory. */
  async stop() {
    const pid = this.masterPid;
    this.masterPid = undefined;
    // An lmtp process that served a connection lingers for seconds after SIGTERM; the
    // mail it delivered is on disk by then, so it gets little grace.
    await retireDaemon(pid, this.dir, 500);
  }

  #logTail() {
    try {
      const lines = readFileSync(join(this.dir, 'log'), 'utf8').trim().split('\n');
      return `; last log lines: ${lines.slice(-5).join(' | ')}`;
    } catch {
      return '';
    }
  }
}
