// Inbound mail for your app: receive mail for your domain and POST each message to an
// HTTP endpoint, through a custom DeliveryAgent. A failing endpoint is retried with
// Postfix's backoff; a 4xx answer bounces the mail back to its sender.
//
//   npm run build
//   WEBHOOK_URL=http://127.0.0.1:3000/inbound node examples/inbound-webhook.mjs
//
// Environment: WEBHOOK_URL (required), DOMAIN (default inbound.example.com),
// LISTEN (default 127.0.0.1:2525), QUEUE_DIR (default ./var/queue).
import { formatLogLine, Logger, Mta, SmtpReply } from 'postern';

const url = process.env.WEBHOOK_URL;
if (!url) {
  console.error('set WEBHOOK_URL to the endpoint that receives the messages');
  process.exit(2);
}

/** POSTs the raw message (message/rfc822) with the envelope in headers. */
const webhook = {
  async deliver(request, reporter) {
    const chunks = [];
    for await (const chunk of request.openContent()) chunks.push(chunk);
    let reply;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'message/rfc822',
          'x-queue-id': request.queueId,
          'x-envelope-from': request.sender,
          'x-envelope-to': request.recipients.map((r) => r.address).join(', '),
        },
        body: Buffer.concat(chunks),
        signal: request.signal, // the queue manager may cancel (shutdown, lease lost)
      });
      await res.body?.cancel();
      reply = res.ok
        ? new SmtpReply(250, '2.0.0', `webhook answered ${res.status}`)
        : res.status >= 400 && res.status < 500 && res.status !== 429
          ? new SmtpReply(550, '5.6.0', `webhook refused the message: HTTP ${res.status}`)
          : new SmtpReply(451, '4.4.0', `webhook unavailable: HTTP ${res.status}`);
    } catch (err) {
      // Connection refused, timeout, DNS: try again later. When in doubt, defer.
      reply = new SmtpReply(451, '4.4.1', `webhook not reachable: ${err.message}`);
    }
    const status = reply.positive ? 'sent' : reply.transient ? 'deferred' : 'bounced';
    for (const r of request.recipients)
      reporter.recipient(r.id, { status, reply, relay: new URL(url).host });
  },
};

const domain = process.env.DOMAIN ?? 'inbound.example.com';
const mta = new Mta(
  {
    myhostname: `mx.${domain}`,
    mydestination: [domain], // mail for any address @domain is "local"...
    localRecipientMaps: '', // ...whatever its local part (the webhook decides)...
    localTransport: 'webhook', // ...and local mail goes to the webhook agent
    agents: { webhook },
    queueDirectory: process.env.QUEUE_DIR ?? './var/queue',
    smtpd: [{ listen: process.env.LISTEN ?? '127.0.0.1:2525' }],
  },
  { logger: new Logger([(event) => console.log(formatLogLine(event))]) },
);

await mta.start();
const { host, port } = mta.listeners[0];
console.log(`listening on ${host}:${port}, posting mail for @${domain} to ${url}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => mta.stop());
