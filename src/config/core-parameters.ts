/**
 * The parameters every component may read: who this machine is (`myhostname`,
 * `mydomain`, `myorigin`, `mydestination`, its interfaces), whom it trusts
 * (`mynetworks`), how it names itself in logs, where its queue is, and the address and
 * bounce rules every receiver and agent shares (`recipientDelimiter`, `allowMinUser`,
 * `softBounce`, `lineLengthLimit`, `defaultProcessLimit`).
 *
 * Postfix counterpart: the global parameters of mail_params.h that every daemon reads
 * (mail_params.c's `time_table`, `int_table`, `str_table`...).
 *
 * Does not: hold a component's own parameters; each component declares those in its
 * `*-parameters.ts` file.
 *
 * @module
 */

import {
  computed,
  defineParameters,
  expandList,
  sameAs,
  type ValuesOf,
} from './parameter-declaration.js';
import { param } from './parameter-kinds.js';

/**
 * The shared parameters.
 *
 * @example
 * ```ts
 * CORE_PARAMETERS.myorigin.defaultText; // '$myhostname'
 * ```
 */
export const CORE_PARAMETERS = defineParameters({
  myhostname: param.string({
    postfix: 'myhostname',
    doc: "This machine's fully qualified host name: the banner, HELO, Received and bounces name it. The Mta's config takes the host's name when it has a dot (else `<name>.localdomain`); resolveParameters() alone takes \"localhost.localdomain\".",
    default: 'localhost.localdomain',
    check: (name, _, key) =>
      /^[A-Za-z0-9.-]+$/.test(name) && !name.startsWith('.')
        ? undefined
        : `${key}: "${name}" is not a valid host name; set a fully qualified name`,
  }),
  mydomain: param.string({
    postfix: 'mydomain',
    doc: "This machine's domain: the default of `mydestination`'s `localhost.$mydomain` and of `append_dot_mydomain`.",
    default: computed('$myhostname less its first label', ['myhostname'], (p) =>
      parentDomain(String(p.myhostname)),
    ),
  }),
  myorigin: param.string({
    postfix: 'myorigin',
    doc: 'The domain appended to addresses without one.',
    default: sameAs('myhostname'),
  }),
  mydestination: param.list({
    postfix: 'mydestination',
    doc: 'Domains delivered locally (the local domain class).',
    default: expandList(['$myhostname', 'localhost.$mydomain', 'localhost']),
  }),
  inetInterfaces: param.list({
    postfix: 'inet_interfaces',
    doc: "The machine's addresses for mail, so that `user@[192.0.2.1]` is local when 192.0.2.1 is one of them. `all` means every address of the host's interfaces, `loopback-only` 127.0.0.1 and ::1. Listeners bind where their `listen` says.",
    default: ['all'],
  }),
  proxyInterfaces: param.list({
    postfix: 'proxy_interfaces',
    doc: 'Addresses of a proxy or NAT in front that also mean this machine.',
    default: [],
  }),
  mynetworks: param.list({
    postfix: 'mynetworks',
    doc: 'Trusted clients, as addresses or CIDR blocks.',
    default: ['127.0.0.0/8', '::1/128'],
    check: (networks, _, key) => {
      const bad = networks.find((net) => !/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(net));
      return bad === undefined
        ? undefined
        : `${key}: "${bad}" is not an address or CIDR block such as "192.0.2.0/24"`;
    },
  }),
  mailName: param.string({
    postfix: 'mail_name',
    doc: "The mail system's name, shown in the SMTP banner and in Received headers.",
    default: 'Postern',
  }),
  syslogName: param.string({
    postfix: 'syslog_name',
    doc: "The program name's prefix in log lines (`postern/smtpd[pid]`); a listener may set its own (`postern/submission`), as master.cf's `-o syslog_name`. Letters, digits and `._/-` only.",
    default: 'postern',
    check: (name, _, key) =>
      /^[A-Za-z0-9._/-]+$/.test(name)
        ? undefined
        : `${key}: "${name}" cannot be a log line's program name; use letters, digits and "._/-" (e.g. "postern/submission")`,
  }),
  maillogFile: param.string({
    postfix: 'maillog_file',
    doc: '`postern serve` appends its log lines to this file instead of writing them to standard output, and opens it again on SIGHUP (after logrotate moves it).',
    default: '',
  }),
  queueDirectory: param.string({
    postfix: 'queue_directory',
    doc: "The file queue store's directory, and where the maildrop lives with any store.",
    default: './var/queue',
  }),
  lineLengthLimit: param.integer({
    postfix: 'line_length_limit',
    doc: 'The longest SMTP command or text line read.',
    default: 2048,
    min: 512,
  }),
  messageSizeLimit: param.integer({
    postfix: 'message_size_limit',
    doc: 'The largest message accepted, in bytes; 0 = no limit.',
    default: 10240000,
  }),
  headerSizeLimit: param.integer({
    postfix: 'header_size_limit',
    doc: 'The most bytes of one message header that are kept; the rest of it is dropped.',
    default: 102400,
  }),
  recipientDelimiter: param.string({
    postfix: 'recipient_delimiter',
    doc: 'The characters that separate a local part from its extension (`user+ext`); empty = no extensions.',
    default: '',
  }),
  allowMinUser: param.boolean({
    postfix: 'allow_min_user',
    doc: 'A sender or recipient address may start with `-`; when off, SMTP, QMQP, `submit()`, `postern sendmail` and Pickup refuse such a sender, and such recipients are refused or bounced. Pipe and local commands never get such a value as an option either way.',
    default: false,
  }),
  softBounce: param.boolean({
    postfix: 'soft_bounce',
    doc: 'Turn every 5xx into 4xx, so that mail that would bounce stays queued (while a config is tried out).',
    default: false,
  }),
  defaultProcessLimit: param.integer({
    postfix: 'default_process_limit',
    doc: "Most SMTP sessions of one listener at once (a listener's `maxproc` overrides it), and most deliveries in flight. A connection beyond the limit waits, with no greeting yet, as in Postfix's listen backlog.",
    default: 100,
    min: 1,
  }),
});

/**
 * The shared parameters, resolved. A component's view picks the ones it reads.
 *
 * @example
 * ```ts
 * const origin: CoreParameters['myorigin'] = resolveParameters().myorigin;
 * ```
 */
export interface CoreParameters extends ValuesOf<typeof CORE_PARAMETERS> {}

/** `example.com` for `mx.example.com`; a name without a dot is its own domain. */
function parentDomain(host: string): string {
  const i = host.indexOf('.');
  return i > 0 && i < host.length - 1 ? host.slice(i + 1) : host;
}
