/**
 * The JSON Schema (draft 2020-12) of a Postern config, generated from the parameter
 * tables: each main parameter with its one-line doc, Postfix name and default, the forms
 * its kind takes (a time as `"300s"` or seconds, a list as an array or `"a, b"`), the
 * listeners (each parameter again as a `-o` override), transports, the queue store,
 * metrics and DKIM. `npm run schema` writes it to config.schema.json, which the package
 * exports as `postern/config.schema.json`: a JSON config that names it as `"$schema"`
 * gets completion, docs on hover and its mistakes marked in an editor.
 *
 * Postfix counterpart: postconf(5), the list of main.cf parameters with their defaults.
 *
 * Does not: check what only code can (a table file that exists, a restriction's
 * arguments, checks across parameters); resolveMtaConfig() does, and has the last word.
 * Keys that only an `.mjs` config can give (agents, contentFilter, code in tls) are not
 * in it.
 *
 * @module
 */

import type { JsonSchema } from '../config/parameter-declaration.js';
import { MAIN_PARAMETERS } from './main-parameters.js';
import { TRANSPORT_TYPES } from './mta-config.js';

const LISTEN: JsonSchema = {
  type: 'string',
  description: '`host:port` or `[ipv6]:port`; port 0 picks a free port.',
  pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^:\\s[\\]]*):\\d{1,5}$',
};

const TABLE: JsonSchema = {
  anyOf: [
    { type: 'string', description: 'A table spec such as "texthash:/etc/postern/users".' },
    { type: 'object', additionalProperties: { type: 'string' } },
  ],
};

/** A listener: where it listens and its overrides of main parameters (master.cf `-o`). */
const LISTENER: JsonSchema = {
  type: 'object',
  description: 'One listener: `listen` and any main parameter to override for it.',
  required: ['listen'],
  allOf: [{ $ref: '#/$defs/parameters' }],
  properties: {
    listen: LISTEN,
    maxproc: {
      type: 'integer',
      minimum: 0,
      description:
        'Most sessions at once (master.cf maxproc; 0 = no limit). Default: defaultProcessLimit.',
    },
    tls: {
      const: 'wrapper',
      description: 'SMTP only: implicit TLS (port 465), as smtpdTlsWrappermode.',
    },
    authenticator: {
      ...TABLE,
      description: 'SMTP only: the SASL users, a table of user → password.',
    },
  },
  unevaluatedProperties: false,
};

/**
 * A transport: its type, the destination limits, a pipe's command and user, and main
 * parameter overrides (master.cf `-o`, read by the smtp and lmtp types).
 */
const TRANSPORT: JsonSchema = {
  type: 'object',
  description: "A transport (a master.cf entry): its type and that type's settings.",
  required: ['type'],
  allOf: [{ $ref: '#/$defs/parameters' }],
  properties: {
    type: { enum: [...TRANSPORT_TYPES] },
    destinationConcurrencyLimit: { type: 'integer', minimum: 1 },
    destinationRecipientLimit: { type: 'integer', minimum: 1 },
    argv: {
      type: 'array',
      minItems: 1,
      items: { type: 'string' },
      description: 'pipe: the command and its arguments, with ${sender}, ${recipient}, ...',
    },
    user: { type: 'string', description: 'pipe: the user (and :group) the command runs as.' },
    flags: { type: 'string', description: "pipe: Postfix pipe(8)'s flags (F, O, R, ...)." },
  },
  unevaluatedProperties: false,
};

const QUEUE_STORE: JsonSchema = {
  description: 'The queue store. Default: { "type": "file" } in queueDirectory.',
  oneOf: [
    {
      type: 'object',
      required: ['type'],
      properties: { type: { const: 'file' }, directory: { type: 'string' } },
      additionalProperties: false,
    },
    {
      type: 'object',
      required: ['type'],
      properties: { type: { const: 'memory' } },
      additionalProperties: false,
    },
    {
      type: 'object',
      required: ['type', 'url'],
      properties: {
        type: { const: 'postgres' },
        url: { type: 'string', description: 'postgres://user@host/database' },
        schema: { type: 'string' },
        poolSize: { type: 'integer', minimum: 1 },
        chunkSize: { type: 'integer', minimum: 1 },
        pollMs: { type: 'integer', minimum: 1 },
        heartbeatMs: { type: 'integer', minimum: 1 },
        nodeTimeoutMs: { type: 'integer', minimum: 1 },
        listen: { type: 'boolean' },
        migrate: { type: 'boolean' },
      },
      additionalProperties: false,
    },
  ],
};

const DKIM_SIGNING: JsonSchema = {
  type: 'array',
  description: 'DKIM keys: mail from trusted clients whose From: domain has a key is signed.',
  items: {
    type: 'object',
    required: ['domain', 'selector'],
    properties: {
      domain: { type: 'string' },
      selector: { type: 'string' },
      privateKeyFile: { type: 'string' },
      privateKey: { type: 'string' },
      subdomains: { type: 'boolean' },
      headers: { type: 'array', items: { type: 'string' } },
    },
    additionalProperties: false,
  },
};

const DKIM_VERIFICATION: JsonSchema = {
  description: 'Authentication-Results on mail from other clients, and their DMARC policy.',
  anyOf: [
    { type: 'boolean' },
    {
      type: 'object',
      properties: {
        authservId: { type: 'string' },
        dmarcPolicy: { enum: ['none', 'enforce'] },
      },
      additionalProperties: false,
    },
  ],
};

/**
 * The JSON Schema of a Postern config, as config.schema.json holds it.
 *
 * @example
 * ```ts
 * writeFileSync('config.schema.json', `${JSON.stringify(configSchema(), null, 2)}\n`);
 * ```
 */
export function configSchema(): JsonSchema {
  const parameters: Record<string, JsonSchema> = {};
  for (const p of MAIN_PARAMETERS.describe()) parameters[p.name] = p.schema;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Postern configuration',
    description:
      "A Postern config: main parameters (Postfix's main.cf names in camelCase), listeners with their overrides, transports, the queue store, metrics and DKIM.",
    type: 'object',
    allOf: [{ $ref: '#/$defs/parameters' }],
    properties: {
      $schema: { type: 'string', description: 'This schema, for editors.' },
      smtpd: {
        type: 'array',
        description: 'SMTP listeners. Default: [{ "listen": "127.0.0.1:2525" }].',
        items: { $ref: '#/$defs/listener' },
      },
      qmqpd: {
        type: 'array',
        description: 'QMQP listeners (none by default).',
        items: { $ref: '#/$defs/listener' },
      },
      transports: {
        type: 'object',
        description: 'Named transports of the built-in types, beside the default ones.',
        additionalProperties: TRANSPORT,
      },
      queueStore: QUEUE_STORE,
      nodeId: { type: 'string', description: 'Node name for queue leases.' },
      metrics: {
        type: 'object',
        description: 'Prometheus metrics and the health check.',
        properties: { listen: LISTEN },
        additionalProperties: false,
      },
      dkimSigning: DKIM_SIGNING,
      dkimVerification: DKIM_VERIFICATION,
    },
    unevaluatedProperties: false,
    $defs: {
      parameters: { type: 'object', properties: parameters },
      listener: LISTENER,
    },
  };
}
