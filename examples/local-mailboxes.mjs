// Mailboxes for several domains without system users: each address has a Maildir
// under one directory (Postfix's virtual(8) set-up from VIRTUAL_README).
//
//   npm run build
//   MAIL_DIR=/var/mail/vhosts node examples/local-mailboxes.mjs
//
// Environment: MAIL_DIR (default ./var/vmail), LISTEN (default 127.0.0.1:2525),
// QUEUE_DIR (default ./var/queue). Read the mail with any Maildir reader (Dovecot, mutt).
import { formatLogLine, Logger, Mta } from 'postern';

// address → mailbox path below MAIL_DIR; a trailing "/" means Maildir.
// `@domain` is a catch-all for the domain.
const mailboxes = {
  'alice@example.com': 'example.com/alice/',
  'bob@example.com': 'example.com/bob/',
  'info@example.org': 'example.org/info/',
  '@example.net': 'example.net/catchall/',
};
// Extra addresses delivered into the mailboxes above.
const aliases = { 'postmaster@example.com': 'alice@example.com' };

const mta = new Mta(
  {
    myhostname: 'mail.example.com',
    mydestination: ['localhost'],
    virtualMailboxDomains: ['example.com', 'example.org', 'example.net'],
    virtualMailboxMaps: mailboxes, // unknown addresses are refused at RCPT TO
    virtualAliasMaps: aliases,
    virtualMailboxBase: process.env.MAIL_DIR ?? './var/vmail',
    // When run as root the files are owned by this uid/gid (ignored otherwise).
    virtualUidMaps: 'static:5000',
    virtualGidMaps: 'static:5000',
    queueDirectory: process.env.QUEUE_DIR ?? './var/queue',
    smtpd: [{ listen: process.env.LISTEN ?? '127.0.0.1:2525' }],
  },
  { logger: new Logger([(event) => console.log(formatLogLine(event))]) },
);

await mta.start();
const { host, port } = mta.listeners[0];
console.log(`listening on ${host}:${port}, mailboxes under ${mta.params.virtualMailboxBase}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => mta.stop());
