// A submission server for your apps: clients log in with AUTH on port 587, and
// everything they send is relayed through your provider's smarthost.
//
//   npm run build
//   SMARTHOST=smtp.provider.example:587 node examples/relay-smarthost.mjs
//
// Environment (all optional except SMARTHOST):
//   SMARTHOST        host:port of the relay every message goes through
//   LISTEN           where clients submit (default 127.0.0.1:587)
//   QUEUE_DIR        the durable queue (default ./var/queue)
//   TLS_CERT, TLS_KEY  PEM files: offer STARTTLS and accept AUTH only under TLS.
//                    Without them AUTH is allowed in plaintext — fine for a demo on
//                    127.0.0.1, never on a real network.
// Stop with Ctrl-C: in-flight messages finish, queued ones are delivered on the next start.
import { formatLogLine, Logger, Mta } from 'postern';

const smarthost = process.env.SMARTHOST;
if (!smarthost) {
  console.error('set SMARTHOST=host:port, the server that relays your mail');
  process.exit(2);
}
const tls = process.env.TLS_CERT && process.env.TLS_KEY;

// The users allowed to submit: user → password. Any lookup table works here (a text
// file, a database function); an .mjs config can hold the same object.
const users = { 'app@example.com': 'app-password', 'alerts@example.com': 'alerts-password' };

const mta = new Mta(
  {
    myhostname: 'relay.example.com',
    mydestination: [], // no local mail: everything goes out
    relayhost: `[${smarthost.replace(/:(\d+)$/, ']:$1')}`, // [host]:port = no MX look-up
    queueDirectory: process.env.QUEUE_DIR ?? './var/queue',
    mynetworks: [], // no client is trusted by address: AUTH is the only way in
    smtpd: [
      {
        listen: process.env.LISTEN ?? '127.0.0.1:587',
        authenticator: users,
        smtpdSaslAuthEnable: true,
        smtpdRelayRestrictions: ['permit_sasl_authenticated', 'reject'],
        ...(tls
          ? {
              smtpdTlsSecurityLevel: 'may',
              smtpdTlsCertFile: process.env.TLS_CERT,
              smtpdTlsKeyFile: process.env.TLS_KEY,
            }
          : { smtpdTlsAuthOnly: false }),
      },
    ],
  },
  { logger: new Logger([(event) => console.log(formatLogLine(event))]) },
);

await mta.start();
const { host, port } = mta.listeners[0];
console.log(`listening on ${host}:${port}, relaying through ${smarthost}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => mta.stop());
