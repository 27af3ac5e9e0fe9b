/**
 * A throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary
 * directory, pg_ctl start on a free loopback port, `pg_ctl -m immediate stop` at the end.
 * When POSTERN_TEST_PG_URL is set (CI may run one server for every test file), that
 * server is used instead and nothing is started or stopped.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root the server runs as
 * the `postgres` user (runuser) in a directory handed to it. Every test takes its own
 * schema (`freshSchema`), so test files and tests never see each other's rows.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian puts the server binaries; PG_BIN overrides. */
function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  for (const v of ['17', '16', '15', '14', '13']) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  throw new Error(
    'no PostgreSQL server binaries found (apt-get install postgresql, or set PG_BIN or POSTERN_TEST_PG_URL)',
  );
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  /** Stops the server (immediate mode) and removes its directory; a no-op for an external one. */
  stop(): Promise<void>;
  /**
   * Outages, for a server this helper started (`own: true`): `pg_ctl restart` in the
   * mode given, or a stop in that mode and a start later on the same port.
   */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  halt(mode: 'fast' | 'immediate'): Promise<void>;
  resume(): Promise<void>;
}

export interface PostgresServerOptions {
  /** fsync and synchronous_commit; off makes tests faster, benchmarks want them on. @default false */
  readonly durable?: boolean;
  /**
   * synchronous_commit alone (fsync stays off): a commit is written to the operating
   * system before it returns, so it survives the server being killed (not the machine).
   * @default false
   */
  readonly synchronousCommit?: boolean;
  /** Start a server of its own even when POSTERN_TEST_PG_URL is set (to restart it). @default false */
  readonly own?: boolean;
  /** @default 300 */
  readonly maxConnections?: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a server binary as the `postgres` user when we are root. */
async function asPostgres(file: string, args: string[]): Promise<void> {
  const isRoot = process.getuid?.() === 0;
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  await run(cmd, argv, { timeout: 60_000 });
}

/** Starts a server, or returns the one POSTERN_TEST_PG_URL names. */
export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const external = process.env.POSTERN_TEST_PG_URL;
  if (external && !options.own) {
    const cannot = async () => {
      throw new Error('an external server (POSTERN_TEST_PG_URL) cannot be restarted here');
    };
    return {
      url: external,
      stop: async () => undefined,
      restart: cannot,
      halt: cannot,
      resume: cannot,
    };
  }
  const bin = binDir();
  const base = await mkdtemp(join(tmpdir(), 'postern-pg-'));
  await chmod(base, 0o755);
  const data = join(base, 'data');
  const isRoot = process.getuid?.() === 0;
  await mkdir(data, { mode: 0o700 });
  if (isRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(data, Number(stdout.trim()), Number(gid.trim()));
  }
  await asPostgres(join(bin, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
    '-E',
    'UTF8',
  ]);
  const durable = options.durable === true;
  const settings = [
    `-c listen_addresses=127.0.0.1`,
    `-k ${data}`,
    `-c max_connections=${options.maxConnections ?? 300}`,
    `-c fsync=${durable ? 'on' : 'off'}`,
    `-c synchronous_commit=${durable || options.synchronousCommit ? 'on' : 'off'}`,
    `-c full_page_writes=${durable ? 'on' : 'off'}`,
    '-c shared_buffers=128MB',
  ];
  const ctl = (args: string[]) => asPostgres(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  const startArgs = (on: number) => [
    '-l',
    join(data, 'log'),
    '-o',
    `-p ${on} ${settings.join(' ')}`,
    '-w',
    '-t',
    '60',
  ];
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await ctl([...startArgs(port), 'start']);
      break;
    } catch (err) {
      // Another process may have taken the port between the probe and the start.
      if (attempt >= 2) throw err;
    }
  }
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: (mode) => ctl(['-m', mode, ...startArgs(port), 'restart']),
    halt: (mode) => ctl(['-m', mode, '-w', 'stop']),
    resume: () => ctl([...startArgs(port), 'start']),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']).catch(
        () => undefined,
      );
      await rm(base, { recursive: true, force: true });
    },
  };
}

let schemaCounter = 0;

/** A schema name no other test uses. */
export function freshSchemaName(prefix = 't'): string {
  schemaCounter++;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${schemaCounter}`;
}

/** Drops a schema and everything in it (after a test). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}
