/**
 * CidrList: a list of IPv4 and IPv6 networks (`127.0.0.0/8`, `[::1]/128`, `192.0.2.7`)
 * that a client address is matched against — `mynetworks`, `*_clients` lists.
 *
 * Postfix counterpart: cidr_match.c and the address part of match_list.c.
 *
 * Does not: look up host names, read files or `cidr:` tables (entries are given inline).
 *
 * SECURITY: the client address matched is treated as hostile: anything that is not a
 * numeric address simply does not match. An entry with host bits set
 * (`192.0.2.1/24`) is refused, as Postfix refuses it, because it usually hides a typo.
 *
 * STANDARDS: RFC 4632 (CIDR), RFC 4291 section 2.2 (IPv6 text form) and 2.5.5.2
 * (IPv4-mapped addresses: `::ffff:192.0.2.1` matches IPv4 entries).
 *
 * @module
 */

import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';

interface Network {
  readonly family: 4 | 6;
  readonly base: bigint;
  readonly mask: bigint;
}

const MAPPED_PREFIX = 0xffffn << 32n;
const V6_ALL = (1n << 128n) - 1n;

/** Parses a numeric IPv4 address to a 32-bit BigInt. */
function ipv4ToBigInt(text: string): bigint {
  let n = 0n;
  for (const part of text.split('.')) n = (n << 8n) | BigInt(Number(part));
  return n;
}

/** Parses a numeric IPv6 address (already validated by isIP) to a 128-bit BigInt. */
function ipv6ToBigInt(text: string): bigint {
  let groups: string[];
  let tail: bigint[] = [];
  let body = text;
  // An embedded IPv4 tail (`::ffff:192.0.2.1`) is two groups.
  const lastColon = body.lastIndexOf(':');
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = ipv4ToBigInt(last);
    tail = [v4 >> 16n, v4 & 0xffffn];
    body = body.slice(0, lastColon + 1);
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1);
  }
  const dbl = body.indexOf('::');
  const toNums = (s: string): bigint[] =>
    s === '' ? [] : s.split(':').map((g) => BigInt(`0x${g}`));
  let values: bigint[];
  if (dbl >= 0) {
    const head = toNums(body.slice(0, dbl));
    const rest = toNums(body.slice(dbl + 2));
    const zeros = 8 - head.length - rest.length - tail.length;
    values = [...head, ...new Array<bigint>(Math.max(zeros, 0)).fill(0n), ...rest, ...tail];
  } else {
    groups = body === '' ? [] : body.split(':');
    values = [...groups.map((g) => BigInt(`0x${g}`)), ...tail];
  }
  let n = 0n;
  for (const v of values) n = (n << 16n) | v;
  return n;
}

/** A numeric address as (family, value); undefined if not an address. Brackets and zone ids are dropped. */
function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  let t = text;
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const pct = t.indexOf('%');
  if (pct >= 0) t = t.slice(0, pct);
  const family = isIP(t);
  if (family === 4) return { family: 4, value: ipv4ToBigInt(t) };
  if (family === 6) return { family: 6, value: ipv6ToBigInt(t) };
  return undefined;
}

function parseEntry(entry: string): Network {
  const bad = (why: string): ConfigError =>
    new ConfigError(
      `"${entry}" is not a network: ${why}; write an address or CIDR block such as "192.0.2.0/24" or "[2001:db8::]/32"`,
    );
  const slash = entry.indexOf('/');
  const addrText = slash < 0 ? entry : entry.slice(0, slash);
  const addr = parseAddress(addrText);
  if (!addr || addrText.includes('%')) throw bad('not a numeric IPv4 or IPv6 address');
  const bits = addr.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) throw bad(`the prefix length must be 0..${bits}`);
    prefix = Number(p);
  }
  const all = (1n << BigInt(bits)) - 1n;
  const mask = all ^ ((1n << BigInt(bits - prefix)) - 1n);
  if ((addr.value & ~mask & all) !== 0n) {
    const base = formatBase(addr.family, addr.value & mask);
    throw bad(`it has host bits set beyond /${prefix} (perhaps "${base}/${prefix}" was meant)`);
  }
  return { family: addr.family, base: addr.value & mask, mask };
}

function formatBase(family: 4 | 6, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  return groups.join(':');
}

/**
 * A list of networks. Entries are checked when the list is built.
 *
 * @example
 * ```ts
 * const mynetworks = new CidrList(['127.0.0.0/8', '::1/128', '192.0.2.0/24']);
 * mynetworks.matches('192.0.2.7'); // true
 * ```
 */
export class CidrList {
  readonly #networks: readonly Network[];

  /** @throws ConfigError naming the first entry that is not an address or CIDR block */
  constructor(entries: readonly string[]) {
    this.#networks = entries.map((e) => parseEntry(e.trim()));
  }

  /** Whether `address` (numeric, optionally bracketed) lies in one of the networks. */
  matches(address: string): boolean {
    // The same client asks again and again (each connection, each recipient): keep the
    // last answer rather than parse the address into big integers every time.
    if (address === this.#lastAddress) return this.#lastAnswer;
    const answer = this.#match(address);
    this.#lastAddress = address;
    this.#lastAnswer = answer;
    return answer;
  }

  #lastAddress: string | undefined;
  #lastAnswer = false;

  #match(address: string): boolean {
    const addr = parseAddress(address);
    if (!addr) return false;
    let v4: bigint | undefined;
    let v6: bigint;
    if (addr.family === 4) {
      v4 = addr.value;
      v6 = MAPPED_PREFIX | addr.value;
    } else {
      v6 = addr.value & V6_ALL;
      if (v6 >> 32n === 0xffffn) v4 = v6 & 0xffffffffn;
    }
    for (const net of this.#networks) {
      if (net.family === 4) {
        if (v4 !== undefined && (v4 & net.mask) === net.base) return true;
      } else if ((v6 & net.mask) === net.base) {
        return true;
      }
    }
    return false;
  }
}
