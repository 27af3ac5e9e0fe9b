const nodemailer = require('nodemailer');
const { createTestMta } = require('postern/testing');

test('the sign-up flow sends a welcome mail', async () => {
  const mta = await createTestMta();
  const transport = nodemailer.createTransport({ host: mta.host, port: mta.port });
  await transport.sendMail({ from: 'app@example.com', to: 'new.user@example.com', subject: 'Welcome!', text: 'Hi' });
  const msg = await mta.waitForMessage('new.user@example.com');
  expect(msg.subject).toBe('Welcome!');
  await mta.close();
});
