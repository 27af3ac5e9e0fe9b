/**
 * The capture server's web UI in a real browser: Debian's Chromium, driven by
 * playwright-core (which never downloads a browser of its own), with a fresh profile.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestMta, type TestMta } from '../../../src/testing/index.js';

const CHROMIUM = '/usr/bin/chromium';
/** A 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

describe('postern capture web UI in Chromium', () => {
  let mta: TestMta;
  let profile: string;
  let browser: BrowserContext;
  /** A stand-in for a remote tracker: the message's images point here. */
  let tracker: Server;
  let trackerHits = 0;

  beforeAll(async () => {
    tracker = createServer((_req, res) => {
      trackerHits++;
      res.end();
    });
    await new Promise<void>((r) => tracker.listen(0, '127.0.0.1', r));
    mta = await createTestMta({ http: true });
    profile = await mkdtemp(join(tmpdir(), 'postern-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await mta?.close();
    await new Promise((r) => tracker?.close(r));
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('lists mail, shows its HTML sandboxed, and adds new mail without a reload', async () => {
    const trackerUrl = `http://127.0.0.1:${(tracker.address() as AddressInfo).port}/pixel.png`;
    const mailer = nodemailer.createTransport({ host: mta.host, port: mta.port, ignoreTLS: true });
    await mailer.sendMail({
      from: '"Shop" <shop@example.com>',
      to: 'ann@example.org',
      subject: 'Welcome aboard',
      text: 'Welcome (text part)',
      html: `<h1 id="greeting">Welcome in HTML</h1><img id="logo" src="cid:logo@shop"><img src="${trackerUrl}"><script>document.body.dataset.ran = 'yes'</script>`,
      attachments: [
        { filename: 'logo.png', content: PNG, contentType: 'image/png', cid: 'logo@shop' },
      ],
    });
    await mailer.sendMail({
      from: '"<img src=x onerror=window.pwned=1>" <billing@example.com>',
      to: 'bob@example.org',
      subject: 'Invoice <42> & more',
      text: 'Invoice text',
    });

    const page = await browser.newPage();
    await page.goto(mta.httpUrl!);
    const rows = page.locator('#messages tbody tr');
    await rows.filter({ hasText: 'Welcome aboard' }).waitFor();
    await rows.filter({ hasText: 'Invoice <42> & more' }).waitFor();
    expect(await rows.locator('td.subject').allTextContents()).toEqual([
      'Invoice <42> & more',
      'Welcome aboard',
    ]);
    // Message data is text, never markup.
    expect(await rows.first().locator('td.from').textContent()).toBe(
      '<img src=x onerror=window.pwned=1> <billing@example.com>',
    );
    expect(await page.evaluate('window.pwned')).toBeUndefined();

    await rows.filter({ hasText: 'Welcome aboard' }).click();
    await expect.poll(() => page.locator('#m-subject').textContent()).toBe('Welcome aboard');
    const body = page.frameLocator('#html-view').locator('#greeting');
    await body.waitFor();
    expect(await body.textContent()).toBe('Welcome in HTML');
    const frame = page.frames().find((f) => f.url().endsWith('.html'));
    await frame!.waitForLoadState('load');
    // The message's script did not run, and its remote image was never fetched.
    expect(await frame!.evaluate("document.body.dataset.ran ?? 'no'")).toBe('no');
    expect(trackerHits).toBe(0);
    // Its own inline image (cid:) is shown from the message's parts.
    expect(await frame!.evaluate("document.getElementById('logo').naturalWidth")).toBe(1);
    expect(await page.locator('#html-view').getAttribute('sandbox')).toBe('');

    await page.evaluate('window.loadedOnce = true');
    await mailer.sendMail({
      from: 'news@example.com',
      to: 'ann@example.org',
      subject: 'Third, live',
      text: 'arrives while the page is open',
    });
    await rows.filter({ hasText: 'Third, live' }).waitFor();
    expect(await rows.first().locator('td.subject').textContent()).toBe('Third, live');
    expect(await page.evaluate('window.loadedOnce')).toBe(true);
  });
});
