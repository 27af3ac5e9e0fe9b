// A filtering mail gateway in front of your mail server: it accepts mail for your
// domain, rejects what header and body checks or an asynchronous content scanner
// refuse (the sender gets a real SMTP rejection, not a bounce later), marks what
// passes and relays it to the internal server.
//
//   npm run build
//   DOWNSTREAM=10.0.0.5:25 node examples/content-filter-gateway.mjs
//
// Environment: DOWNSTREAM (host:port of the internal server, required),
// DOMAIN (default example.com), LISTEN (default 127.0.0.1:2525), QUEUE_DIR (./var/queue).
import { Readable } from 'node:stream';
import { formatLogLine, Logger, Mta, SmtpReply } from 'postern';

const downstream = process.env.DOWNSTREAM;
if (!downstream) {
  console.error('set DOWNSTREAM=host:port, the internal server that gets the clean mail');
  process.exit(2);
}
const domain = process.env.DOMAIN ?? 'example.com';

// Postfix header_checks(5) / body_checks(5) rules, inline. A file works too:
// headerChecks: 'regexp:/etc/postern/header_checks'.
const headerChecks = `regexp:{
  {/^Subject:.*make money fast/ REJECT 5.7.1 Looks like spam},
  {/^X-Mailer: MassMailer/ REJECT 5.7.1 Bulk mailer not accepted} }`;
const bodyChecks = 'regexp:{ {/^BUY NOW/ REJECT 5.7.1 Message content rejected} }';

/**
 * The content scanner: sees each message as it streams in and decides before the
 * client gets its reply. Here a stand-in for a virus scanner or a spam-scoring
 * service: it looks for the EICAR test signature. What passes gets an X-Scanned-By
 * header; the body is handed back unchanged (the file queue needs it given back when
 * headers are added). Messages are at most `messageSizeLimit` (10 MB) here.
 */
async function scan(envelope, message) {
  const chunks = [];
  for await (const chunk of message) chunks.push(chunk);
  const whole = Buffer.concat(chunks);
  if (whole.includes('EICAR-STANDARD-ANTIVIRUS-TEST-FILE'))
    return { action: 'reject', reply: new SmtpReply(554, '5.7.1', 'Virus found: EICAR test file') };
  const headerEnd = whole.indexOf('\r\n\r\n');
  const body = headerEnd < 0 ? Buffer.alloc(0) : whole.subarray(headerEnd + 4);
  return {
    action: 'accept',
    headers: [`X-Scanned-By: postern-gateway (${envelope.queueId})`],
    body: Readable.from([body]),
  };
}

const mta = new Mta(
  {
    myhostname: `gateway.${domain}`,
    mydestination: [],
    mynetworks: [], // every client is treated as the internet...
    smtpdRelayRestrictions: ['reject_unauth_destination'], // ...and may send only to us:
    relayDomains: [domain], // mail for this domain...
    transportMaps: { [domain]: `relay:[${downstream.replace(/:(\d+)$/, ']:$1')}` }, // ...and pass it on
    headerChecks,
    bodyChecks,
    queueDirectory: process.env.QUEUE_DIR ?? './var/queue',
    smtpd: [{ listen: process.env.LISTEN ?? '127.0.0.1:2525' }],
  },
  {
    contentFilter: scan,
    logger: new Logger([(event) => console.log(formatLogLine(event))]),
  },
);

await mta.start();
const { host, port } = mta.listeners[0];
console.log(`listening on ${host}:${port}, filtering mail for @${domain} to ${downstream}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => mta.stop());
