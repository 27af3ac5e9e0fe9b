const nodemailer = require('nodemailer');
const { createTestMta } = require('postern/testing');

test('the sign-up flow sends a welcome mail', async () => {
  const mta = await createTestMta();
  const transport = nodemailer.createTransport({ host: mta.host, port: mta.port });
  await transport.sendMail({ from: 'app@example.com', to: 'ann@example.com', subject: 'Welcome!' });
  const msg = await mta.waitForMessage('ann@example.com');
  expect(msg.subject).toBe('Welcome!');
  await mta.close();
});
