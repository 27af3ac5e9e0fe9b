/**
 * A private Postfix instance for interop tests and benchmarks: its own main.cf and
 * master.cf, queue and log under a temporary directory, one smtpd on a free 127.0.0.1
 * port, nothing else listening. By default it accepts mail from 127.0.0.0/8, fsyncs each
 * queue file before the 250 reply, and delivers everything to discard(8), which makes it
 * the accept-and-drop anchor; with `relayhost` it relays everything there through
 * smtp(8) instead, the end-to-end anchor.
 *
 * Postfix counterpart: what `postfix -c DIR start` runs: master(8) with smtpd, cleanup,
 * qmgr, trivial-rewrite, bounce, discard, smtp and postlogd, configured per postconf(5).
 *
 * Does not do: local delivery, aliases, TLS, chroot, syslog. The instance logs to its own
 * maillog through postlogd (or not at all with `log: false`).
 *
 * SECURITY: master(8) must start as root, binds 127.0.0.1 only and runs its daemons as
 * the `postfix` user. The temporary directory is made world-searchable because those
 * daemons must reach the queue inside it.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
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

/** How to get Postfix, for every message that finds it missing. */
export const POSTFIX_INSTALL =
  'install it with: debconf-set-selections <<< "postfix postfix/main_mailer_type select No configuration" ' +
  '&& apt-get install -y postfix (this configures and starts no system MTA)';

/**
 * Why a private Postfix instance cannot run here (what is missing and how to get it), or
 * undefined when it can.
 */
export function postfixProblem() {
  const missing = ['postfix', 'postconf'].filter((c) => !findCommand(c));
  if (missing.length > 0)
    return `Postfix is not installed (no ${missing.join(', ')}); ${POSTFIX_INSTALL}`;
  if (!userIds('postfix')) return `the postfix user does not exist; ${POSTFIX_INSTALL}`;
  if (!isRoot()) {
    return "Postfix's master(8) must be started as root (it binds the port and drops to the postfix user); run this as root";
  }
  return undefined;
}

/** Queue directories that hold messages not yet delivered. */
const QUEUES = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];

/**
 * The services of master.cf, one per line: name, type, private, unprivileged, chroot,
 * wakeup, process limit, command. No chroot: the Debian chroot would need copies of /etc
 * files inside the queue directory.
 */
function masterCf(listen) {
  const services = [
    [listen, 'inet', 'n', '-', 'n', '-', '-', 'smtpd'],
    ['pickup', 'unix', 'n', '-', 'n', '60', '1', 'pickup'],
    ['cleanup', 'unix', 'n', '-', 'n', '-', '0', 'cleanup'],
    ['qmgr', 'unix', 'n', '-', 'n', '300', '1', 'qmgr'],
    ['rewrite', 'unix', '-', '-', 'n', '-', '-', 'trivial-rewrite'],
    ['bounce', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['defer', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['trace', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['verify', 'unix', '-', '-', 'n', '-', '1', 'verify'],
    ['flush', 'unix', 'n', '-', 'n', '1000?', '0', 'flush'],
    ['proxymap', 'unix', '-', '-', 'n', '-', '-', 'proxymap'],
    ['proxywrite', 'unix', '-', '-', 'n', '-', '1', 'proxymap'],
    ['smtp', 'unix', '-', '-', 'n', '-', '-', 'smtp'],
    ['relay', 'unix', '-', '-', 'n', '-', '-', 'smtp'],
    ['showq', 'unix', 'n', '-', 'n', '-', '-', 'showq'],
    ['error', 'unix', '-', '-', 'n', '-', '-', 'error'],
    ['retry', 'unix', '-', '-', 'n', '-', '-', 'error'],
    ['discard', 'unix', '-', '-', 'n', '-', '-', 'discard'],
    ['anvil', 'unix', '-', '-', 'n', '-', '1', 'anvil'],
    ['scache', 'unix', '-', '-', 'n', '-', '1', 'scache'],
    ['postlog', 'unix-dgram', 'n', '-', 'n', '-', '1', 'postlogd'],
  ];
  return `${services.map((s) => s.join(' ')).join('\n')}\n`;
}

/**
 * A private Postfix instance. `create()` writes its files, `start()` runs it, `stop()`
 * stops every process of it and removes its directory (also when it never started).
 */
export class PostfixInstance {
  /**
   * Writes a new instance's configuration under a fresh temporary directory.
   * Options: `relayhost` (e.g. `[127.0.0.1]:2526`: relay everything there instead of
   * discarding it), `log` (default true: keep a maillog, needed by `delivered()`),
   * `parameters` (more main.cf settings, Postfix names).
   */
  static async create(options = {}) {
    const problem = postfixProblem();
    if (problem) throw new Error(problem);
    const port = await freePort();
    const pf = new PostfixInstance(port, options);
    await pf.#writeConfig();
    return pf;
  }

  /** The instance's temporary directory. */
  dir;
  /** The SMTP port on 127.0.0.1. */
  port;
  /** PID of master(8) while it runs (it leads the process group of the instance). */
  masterPid = undefined;
  #options;
  #logOffset = 0;
  #logCounts = new Map();
  #logRest = '';

  constructor(port, options) {
    this.port = port;
    this.#options = { log: true, ...options };
    this.dir = mkdtempSync(join(tmpdir(), 'postern-postfix-'));
    chmodSync(this.dir, 0o755);
  }

  get configDirectory() {
    return join(this.dir, 'etc');
  }
  get queueDirectory() {
    return join(this.dir, 'queue');
  }
  get logFile() {
    return join(this.dir, 'log', 'maillog');
  }

  /** The main.cf settings of this instance. */
  #mainCf() {
    const o = this.#options;
    const transport = o.relayhost ? 'smtp' : 'discard:peer';
    const p = {
      compatibility_level: '3.6',
      queue_directory: this.queueDirectory,
      data_directory: join(this.dir, 'data'),
      myhostname: 'postfix.peer.test',
      mydomain: 'peer.test',
      myorigin: '$myhostname',
      // Nothing is local: every recipient goes to the default transport.
      mydestination: '',
      relay_domains: '',
      local_recipient_maps: '',
      alias_maps: '',
      alias_database: '',
      inet_interfaces: '127.0.0.1',
      inet_protocols: 'ipv4',
      mynetworks: '127.0.0.0/8',
      smtpd_relay_restrictions: 'permit_mynetworks, reject',
      smtpd_peername_lookup: 'no',
      default_transport: transport,
      relay_transport: transport,
      local_transport: transport,
      relayhost: o.relayhost ?? '',
      smtp_tls_security_level: 'none',
      message_size_limit: '52428800',
      biff: 'no',
      ...(o.log
        ? { maillog_file_prefixes: join(this.dir, 'log'), maillog_file: this.logFile }
        : {}),
      ...o.parameters,
    };
    return Object.entries(p)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n');
  }

  async #writeConfig() {
    for (const d of ['etc', 'queue', 'data', 'log']) mkdirSync(join(this.dir, d));
    const ids = userIds('postfix');
    chownSync(join(this.dir, 'data'), ids.uid, ids.gid);
    await writeFile(join(this.configDirectory, 'main.cf'), `${this.#mainCf()}\n`);
    await writeFile(join(this.configDirectory, 'master.cf'), masterCf(`127.0.0.1:${this.port}`));
  }

  /** Starts master(8) and resolves once the SMTP port accepts connections. */
  async start() {
    if (this.masterPid) throw new Error(`Postfix in ${this.dir} is running already`);
    try {
      await run('postfix', ['-c', this.configDirectory, 'start'], { env: this.#env() });
    } catch (err) {
      throw new Error(`Postfix did not start: ${this.#explain(err)}`);
    }
    this.masterPid = await readPidFile(join(this.queueDirectory, 'pid', 'master.pid'));
    adoptDaemon(this.masterPid, this.dir);
    await waitForPort(this.port, 15_000, () =>
      groupMembers(this.masterPid).length === 0
        ? `master(8) exited; ${this.#logTail()}`
        : undefined,
    );
  }

  /**
   * Stops every process of the instance (SIGTERM to master(8), which passes it on, then
   * waits until none is left) and removes the directory.
   */
  async stop() {
    const pid = this.masterPid;
    this.masterPid = undefined;
    await retireDaemon(pid, this.dir);
  }

  /** The PID in master(8)'s pid file. */
  pid() {
    return Number(readFileSync(join(this.queueDirectory, 'pid', 'master.pid'), 'utf8').trim());
  }

  /** Every process of the instance: master(8) and the daemons it runs. */
  processes() {
    return this.masterPid ? groupMembers(this.masterPid) : [];
  }

  /** How many messages are in the queue, not yet delivered. */
  async queued() {
    let n = 0;
    const count = async (dir) => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return; // the daemons create the queues as they need them
      }
      for (const e of entries) {
        if (e.isDirectory()) await count(join(dir, e.name));
        else n++;
      }
    };
    for (const q of QUEUES) await count(join(this.queueDirectory, q));
    return n;
  }

  /**
   * How many deliveries the log reports with status=sent; with `service` (e.g. `smtp`,
   * `discard`) only those of that daemon. The log is read incrementally.
   */
  async delivered(service) {
    if (!this.#options.log) throw new Error('this Postfix instance keeps no log (log: false)');
    await this.#readLog();
    return this.#logCounts.get(service ?? '*') ?? 0;
  }

  /** Every line of the maillog so far. */
  async logLines() {
    try {
      return (await readFile(this.logFile, 'utf8')).split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  async #readLog() {
    let fh;
    try {
      fh = await open(this.logFile, 'r');
    } catch {
      return; // postlogd has written nothing yet
    }
    try {
      for (;;) {
        const buf = Buffer.alloc(1 << 16);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.#logOffset);
        if (bytesRead === 0) break;
        this.#logOffset += bytesRead;
        const lines = (this.#logRest + buf.toString('latin1', 0, bytesRead)).split('\n');
        this.#logRest = lines.pop();
        for (const line of lines) {
          const m = /postfix\/([\w-]+)\[\d+\]: .*status=sent/.exec(line);
          if (!m) continue;
          this.#logCounts.set('*', (this.#logCounts.get('*') ?? 0) + 1);
          this.#logCounts.set(m[1], (this.#logCounts.get(m[1]) ?? 0) + 1);
        }
      }
    } finally {
      await fh.close();
    }
  }

  /** postfix(1) finds postconf and master through these; keep the caller's PATH. */
  #env() {
    return { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  }

  #explain(err) {
    const out = `${err.stderr ?? ''}${err.stdout ?? ''}`.trim();
    return `${out || err.message}${this.#logTail() ? `; ${this.#logTail()}` : ''}`;
  }

  #logTail() {
    try {
      const lines = readFileSync(this.logFile, 'utf8').trim().split('\n');
      return `last log lines: ${lines.slice(-5).join(' | ')}`;
    } catch {
      return '';
    }
  }
}
