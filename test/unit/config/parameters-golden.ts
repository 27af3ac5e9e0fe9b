/**
 * The inputs of the parameter golden file (fixtures/parameters-golden.json): the
 * resolved value of every parameter under three base configs, and what each parameter
 * makes of a set of probe values (the parsed value, or the error with its key). The file
 * was written from the single parameter table that preceded the per-component tables,
 * so the test that reads it shows every default and check survived the split.
 */

/** Base configs whose resolved parameters are compared in full. */
export const BASES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  empty: {},
  host: { myhostname: 'mx.example.com' },
  // Parameters other parameters' defaults refer to.
  related: {
    myhostname: 'mx.example.com',
    mydomain: 'example.org',
    mailName: 'Mailer',
    myorigin: 'example.net',
    mynetworks: ['10.0.0.0/8'],
    headerChecks: 'regexp:/etc/postern/header_checks',
    smtpdTlsCertFile: '/etc/postern/cert.pem',
    aliasMaps: 'texthash:/etc/aliases',
    virtualAliasMaps: { 'a@example.com': 'b@example.com' },
  },
};

/** Values given to each parameter in turn (beside `myhostname: 'mx.example.com'`). */
export const PROBES: readonly unknown[] = [
  'yes',
  'no',
  '300s',
  '250ms',
  '10',
  10,
  0,
  -1,
  1.5,
  700,
  ['a', 'b'],
  'a, b',
  '',
  'none',
  'may',
  'PLAIN',
  'plain, login',
  {},
  { k: 'v' },
  'permit_mynetworks, reject',
  'inline:{ a=b }',
  null,
  true,
  'haproxy',
  'ipv4',
];

/** JSON has no undefined: a table parameter without a table is written as this. */
export function encode(value: unknown): unknown {
  return value === undefined ? '<undefined>' : value;
}

/**
 * An error message with the parameter's name and a string, array or object probe's JSON
 * made placeholders, so that one template serves every parameter of a kind.
 */
export function template(message: string, name: string, probe: unknown): string {
  const text = typeof probe === 'object' || typeof probe === 'string' ? JSON.stringify(probe) : '';
  const valued = text && probe !== null ? message.split(text).join('$VALUE') : message;
  return valued.split(name).join('$NAME');
}
