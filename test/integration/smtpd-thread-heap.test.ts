/**
 * The smtpd worker thread's heap (`smtpdWorkerThreads: 1`): its young generation is
 * bounded by the thread's own resource limits, whatever the process's semi-space growth
 * factor says, unless the operator set V8's semi-space flags, which then apply as set.
 * A probe loaded with `--import` reads the limits inside the thread of a real
 * `postern serve`, which then takes mail from nodemailer.
 *
 * @module
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { poll, sendThroughNodemailer, workerServers } from '../helpers/worker-load.js';

const PROBE = fileURLToPath(new URL('../helpers/thread-heap-probe.mjs', import.meta.url));

interface Probe {
  resourceLimits: { maxYoungGenerationSizeMb: number };
  /** The packages the thread loaded through require, once it has exited. */
  packages?: string[];
}

describe("the smtpd worker thread's heap", () => {
  const { setUp } = workerServers({ smtpdWorkerThreads: 1 });
  const probes = mkdtempSync(join(tmpdir(), 'postern-heap-probe-'));
  afterAll(() => rmSync(probes, { recursive: true, force: true }));
  let n = 0;

  /** Starts `postern serve` with NODE_OPTIONS `options` and the probe; gives what it read. */
  const probed = async (options: string) => {
    const saved = { ...process.env };
    const out = join(probes, `probe-${n++}.json`);
    process.env.NODE_OPTIONS = `${options} --import ${PROBE}`.trim();
    process.env.POSTERN_TEST_HEAP_PROBE = out;
    try {
      const started = await setUp();
      expect(await poll(() => existsSync(out), 10_000)).toBe(true);
      return { ...started, out, probe: JSON.parse(readFileSync(out, 'utf8')) as Probe };
    } finally {
      process.env = saved;
    }
  };

  it('bounds the young generation of the thread by its resource limits (2 MiB semi-spaces), and serves mail under them without loading the public suffix list', {
    timeout: 60_000,
  }, async () => {
    const { server, sink, probe, out } = await probed('');
    expect(probe.resourceLimits.maxYoungGenerationSizeMb).toBe(6);
    const recipients = Array.from({ length: 40 }, (_, i) => `h${i}@bücher.example`);
    const ids = await sendThroughNodemailer(server.port, recipients);
    expect(new Set(ids).size).toBe(recipients.length);
    expect(await sink.waitFor(recipients, 30_000)).toBe(true);
    expect(await server.stop('SIGTERM')).toBe(0);
    const { packages } = JSON.parse(readFileSync(out, 'utf8')) as Probe;
    // What the thread needs, and no more: tldts carries the public suffix list, which
    // only domainInfo() reads.
    expect(packages).toBeDefined();
    expect(packages).not.toContain('tldts');
  });

  it("leaves the young generation to the operator's semi-space flag in NODE_OPTIONS", {
    timeout: 60_000,
  }, async () => {
    const { probe } = await probed('--max-semi-space-size=8');
    // Node and V8 size it then, not the thread's own limits.
    expect(probe.resourceLimits.maxYoungGenerationSizeMb).not.toBe(6);
  });
});
