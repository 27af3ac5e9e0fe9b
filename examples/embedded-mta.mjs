// A complete MTA inside a Node program: accept mail on a local port, queue it durably,
// deliver mail for @localhost into Maildir folders, and print Postfix-style log lines.
//
//   npm run build && node examples/embedded-mta.mjs [DIR]
//
// It sends itself one message through nodemailer, waits until it is delivered, then stops.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { formatLogLine, Logger, Mta } from 'postern';

const dir = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'postern-example-')));
let delivered;
const done = new Promise((resolve) => {
  delivered = resolve;
});

const logger = new Logger([
  (event) => {
    console.log(formatLogLine(event));
    if (/status=sent/.test(event.text)) delivered();
  },
]);

const mta = new Mta(
  {
    myhostname: 'mx.example.test',
    smtpd: [{ listen: '127.0.0.1:0' }],
    queueDirectory: join(dir, 'queue'),
    mailSpoolDirectory: join(dir, 'mail/'),
    // Any name @localhost gets a Maildir (the library's default takes only the host's
    // accounts and aliases, as Postfix does).
    localRecipientMaps: '',
  },
  { logger },
);
await mta.start();
const { port } = mta.listeners[0];

const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
const info = await transport.sendMail({
  from: 'app@example.test',
  to: 'alice@localhost',
  subject: 'Hello from an embedded Postern',
  text: 'It works.',
});
console.log(`queued: ${info.response}`);

await done;
await mta.stop();
console.log(`delivered into ${join(dir, 'mail/alice/new/')}`);
