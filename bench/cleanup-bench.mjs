#!/usr/bin/env node
/**
 * Cleanup throughput (issue 5 acceptance 4): MB/s of message content through Cleanup
 * on a generated mixed corpus — plain text, multipart/alternative with a small
 * attachment, 8-bit text, and large base64 attachments — without checks, with 100
 * header_checks regexps, and with those plus body_checks. Run with
 * `npm run bench:cleanup` (builds dist first).
 *
 * The store is a null QueueStore (content is counted and dropped), so the figure is
 * Cleanup's own CPU cost: scanning, header parsing, checks, MIME tracking. The
 * configurations alternate (A B C A B C ...) over RUNS counted rounds after a warm-up
 * and the median is reported, as BENCHMARKING.md asks, with the process's CPU time
 * (user + system) next to wall time: on a shared machine the CPU figure travels better.
 *
 * Environment: RUNS (default 3), SCALE (corpus size multiplier, default 1 ≈ 64 MB).
 */

import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Cleanup, QueueIdGenerator, Rewriter, resolveParameters } from '../dist/index.js';

const RUNS = Number(process.env.RUNS ?? 3);
const SCALE = Number(process.env.SCALE ?? 1);
const CHUNK = 64 * 1024;

/** A QueueStore that only takes writes: Cleanup calls create() and the writer. */
class NullStore {
  bytes = 0;
  async open() {}
  async close() {}
  async create(queueId) {
    const content = new Writable({
      write: (chunk, _e, cb) => {
        this.bytes += chunk.length;
        cb();
      },
    });
    return {
      queueId,
      content,
      commit: async () => {
        if (!content.writableEnded) content.end();
      },
      abort: async () => {
        content.destroy();
      },
    };
  }
}

function headers(subject, extra = []) {
  return [
    'From: "Alice Example" <alice@example.org>',
    'To: bob@example.com, "Carol" <carol@example.net>',
    `Subject: ${subject}`,
    'Date: Sun, 29 Nov 2026 12:00:00 +0000',
    'Message-ID: <20261129120000.12345@example.org>',
    'Received: from relay.example.org (relay.example.org [192.0.2.7]) by mx.example.org with ESMTPS id 4AbCdE; Sun, 29 Nov 2026 11:59:59 +0000',
    ...extra,
  ];
}

function textLines(bytes, eightBit) {
  const words = eightBit
    ? ['Grüße', 'naïve', 'façade', 'Ærø', 'smörgåsbord', 'über', 'déjà', 'vu', 'piñata']
    : ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed'];
  const lines = [];
  let size = 0;
  let i = 0;
  while (size < bytes) {
    let line = '';
    while (line.length < 70) line += `${words[i++ % words.length]} `;
    lines.push(line.trimEnd());
    size += line.length + 2;
  }
  return lines.join('\r\n');
}

function base64Block(bytes) {
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n';
  return line.repeat(Math.ceil(bytes / line.length));
}

/** The corpus: [name, Buffer] pairs. */
function corpus() {
  const out = [];
  const plain = Buffer.from(
    `${headers('plain note').join('\r\n')}\r\n\r\n${textLines(4096, false)}\r\n`,
  );
  for (let i = 0; i < 800 * SCALE; i++) out.push(['plain 4 KB', plain]);
  const eight = Buffer.from(
    `${headers('8-bit note', ['MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit']).join('\r\n')}\r\n\r\n${textLines(20_000, true)}\r\n`,
  );
  for (let i = 0; i < 300 * SCALE; i++) out.push(['8-bit 20 KB', eight]);
  const multi = Buffer.from(
    [
      ...headers('multipart', [
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="=_outer"',
      ]),
      '',
      '--=_outer',
      'Content-Type: multipart/alternative; boundary="=_alt"',
      '',
      '--=_alt',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      textLines(8000, false),
      '--=_alt',
      'Content-Type: text/html; charset=us-ascii',
      '',
      `<html><body>${textLines(12000, false)}</body></html>`,
      '--=_alt--',
      '--=_outer',
      'Content-Type: application/pdf; name="report.pdf"',
      'Content-Disposition: attachment; filename="report.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      base64Block(100_000),
      '--=_outer--',
      '',
    ].join('\r\n'),
  );
  for (let i = 0; i < 150 * SCALE; i++) out.push(['multipart 120 KB', multi]);
  const large = Buffer.from(
    [
      ...headers('large attachment', [
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="=_big"',
      ]),
      '',
      '--=_big',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--=_big',
      'Content-Type: application/zip; name="data.zip"',
      'Content-Transfer-Encoding: base64',
      '',
      base64Block(5 * 1024 * 1024),
      '--=_big--',
      '',
    ].join('\r\n'),
  );
  for (let i = 0; i < 6 * SCALE; i++) out.push(['large 5 MB', large]);
  return out;
}

function headerChecks(n) {
  const rules = [];
  for (let i = 0; i < n; i++)
    rules.push(`{/^X-Spam-Flag-${i}: .*(viagra|casino|lottery)${i}/ REJECT spam ${i}}`);
  return `regexp:{ ${rules.join(', ')} }`;
}

const BODY_CHECKS =
  'regexp:{ {/^<iframe src=(3D)?cid:.* height=(3D)?0 width=(3D)?0>$/ REJECT IFRAME exploit}, {/cheap (pills|watches)/ REJECT}, {/^begin [0-7]{3} .*\\.(exe|scr)$/ REJECT uuencoded executable} }';

const CONFIGS = [
  ['no checks', {}],
  ['100 header_checks', { headerChecks: headerChecks(100) }],
  ['100 header_checks + body_checks', { headerChecks: headerChecks(100), bodyChecks: BODY_CHECKS }],
];

async function runOnce(messages, overrides) {
  const params = resolveParameters({
    myhostname: 'mx.example.com',
    messageSizeLimit: 0,
    ...overrides,
  });
  const store = new NullStore();
  const cleanup = new Cleanup({
    params,
    store,
    rewriter: new Rewriter({ params }),
    queueIds: new QueueIdGenerator('BENCH'),
  });
  const source = {
    component: 'smtpd',
    protocol: 'ESMTP',
    client: { address: '192.0.2.10', name: 'client.example.net' },
    helo: 'client.example.net',
  };
  let input = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const [, msg] of messages) {
    const tx = await cleanup.open(source);
    tx.setSender('alice@example.org');
    tx.addRecipient({ address: 'bob@example.com' });
    const chunks = [];
    for (let i = 0; i < msg.length; i += CHUNK) chunks.push(msg.subarray(i, i + CHUNK));
    await pipeline(Readable.from(chunks), tx.content);
    const r = await tx.commit();
    if (r.reply.code !== 250) throw new Error(`unexpected reply ${r.reply}`);
    input += msg.length;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  await cleanup.close();
  return { mb: input / 1024 / 1024, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const messages = corpus();
const kinds = new Map();
for (const [name, msg] of messages) {
  const k = kinds.get(name) ?? { count: 0, bytes: 0 };
  k.count++;
  k.bytes += msg.length;
  kinds.set(name, k);
}
console.log('Corpus:');
for (const [name, k] of kinds)
  console.log(
    `  ${name.padEnd(18)} ${String(k.count).padStart(5)} messages  ${(k.bytes / 1048576).toFixed(1).padStart(6)} MB`,
  );

// Warm-up round (not counted).
for (const [, o] of CONFIGS) await runOnce(messages.slice(0, 200), o);
const results = CONFIGS.map(() => []);
for (let r = 0; r < RUNS; r++) {
  for (const [i, [, o]] of CONFIGS.entries()) {
    const { mb, seconds, cpuSeconds } = await runOnce(messages, o);
    results[i].push({
      mbps: mb / seconds,
      cpuMbps: mb / cpuSeconds,
      msgs: messages.length / seconds,
      usPerMsg: (cpuSeconds * 1e6) / messages.length,
      mb,
    });
  }
}
console.log(`\nCleanup throughput, median of ${RUNS} alternating runs (node ${process.version}):`);
console.log(
  '| configuration | corpus MB | MB/s (wall) | MB per CPU-s | msgs/s (wall) | CPU µs/msg |',
);
console.log('|---|---:|---:|---:|---:|---:|');
for (const [i, [name]] of CONFIGS.entries()) {
  const rs = results[i];
  console.log(
    `| ${name} | ${rs[0].mb.toFixed(1)} | ${median(rs.map((x) => x.mbps)).toFixed(1)} | ${median(rs.map((x) => x.cpuMbps)).toFixed(1)} | ${median(rs.map((x) => x.msgs)).toFixed(0)} | ${median(rs.map((x) => x.usPerMsg)).toFixed(0)} |`,
  );
}
