// A test of your app's mail, with a real MTA in the test process. Run: npx vitest run
import nodemailer from 'nodemailer';
import { createTestMta } from 'postern/testing';
import { expect, test } from 'vitest';

test('signing up sends a welcome mail', async () => {
  const mta = await createTestMta();
  const mailer = nodemailer.createTransport({ host: mta.host, port: mta.port });
  await mailer.sendMail({ from: 'app@example.com', to: 'ann@example.com', subject: 'Welcome!' });
  const message = await mta.waitForMessage('ann@example.com');
  expect(message.subject).toBe('Welcome!');
  await mta.close();
});
