import assert from 'node:assert/strict';
import { test } from 'node:test';
import nodemailer from 'nodemailer';
import { createTestMta } from 'postern/testing';

test('the sign-up flow sends a welcome mail', async () => {
  const mta = await createTestMta();
  const transport = nodemailer.createTransport({ host: mta.host, port: mta.port });
  await transport.sendMail({ from: 'app@example.com', to: 'ann@example.com', subject: 'Welcome!' });
  const msg = await mta.waitForMessage('ann@example.com');
  assert.equal(msg.subject, 'Welcome!');
  await mta.close();
});
