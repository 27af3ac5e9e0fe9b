/**
 * The HAProxy PROXY protocol, versions 1 (text) and 2 (binary): the real client address
 * sent by a load balancer in front of the SMTP server.
 *
 * Postfix counterpart: smtpd_haproxy.c and haproxy_srvr.c (`smtpd_upstream_proxy_protocol
 * = haproxy`, `smtpd_upstream_proxy_timeout`). `PROXY UNKNOWN` (v1) and the LOCAL
 * command (v2) keep the proxy's own address, as Postfix does.
 *
 * Does not: TLVs (v2 extensions are skipped), UDP or UNIX-socket address families
 * (treated as LOCAL).
 *
 * SECURITY: only peers the operator trusts may send the header (the receiver checks);
 * the v1 line is at most 107 bytes, the v2 header at most 16 + 536 bytes here; anything
 * malformed ends the connection before the greeting.
 *
 * STANDARDS: the PROXY protocol specification (haproxy.org, proxy-protocol.txt).
 *
 * @module
 */

import net from 'node:net';

const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_MAX = 107;
const V2_MAX_BODY = 536;

/** A parsed header: how many bytes it took and the client it names (none for LOCAL). */
export type ProxyHeader =
  | {
      readonly ok: true;
      readonly length: number;
      readonly client?: { address: string; port: number };
    }
  | { readonly ok: false; readonly error: string }
  | { readonly ok: 'incomplete' };

/** Parses a PROXY header at the start of `buf`. */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return { ok: 'incomplete' };
  if (buf[0] === 0x0d) return parseV2(buf);
  return parseV1(buf);
}

function parseV1(buf: Buffer): ProxyHeader {
  const lf = buf.indexOf(0x0a);
  if (lf < 0) {
    if (buf.length >= V1_MAX) return { ok: false, error: 'PROXY v1 line too long' };
    const prefix = buf.subarray(0, Math.min(6, buf.length)).toString('latin1');
    if (!'PROXY '.startsWith(prefix)) return { ok: false, error: 'not a PROXY header' };
    return { ok: 'incomplete' };
  }
  if (lf + 1 > V1_MAX || lf === 0 || buf[lf - 1] !== 0x0d)
    return { ok: false, error: 'bad PROXY v1 line' };
  const line = buf.subarray(0, lf - 1).toString('latin1');
  const f = line.split(' ');
  if (f[0] !== 'PROXY') return { ok: false, error: 'not a PROXY header' };
  if (f[1] === 'UNKNOWN') return { ok: true, length: lf + 1 };
  if ((f[1] !== 'TCP4' && f[1] !== 'TCP6') || f.length !== 6)
    return { ok: false, error: 'bad PROXY v1 line' };
  const [, proto, src, dst, sport, dport] = f as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : 6;
  if (net.isIP(src) !== family || net.isIP(dst) !== family)
    return { ok: false, error: 'bad PROXY v1 address' };
  if (
    !/^\d{1,5}$/.test(sport) ||
    !/^\d{1,5}$/.test(dport) ||
    Number(sport) > 65535 ||
    Number(dport) > 65535
  )
    return { ok: false, error: 'bad PROXY v1 port' };
  return { ok: true, length: lf + 1, client: { address: src, port: Number(sport) } };
}

function parseV2(buf: Buffer): ProxyHeader {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (!buf.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n)))
    return { ok: false, error: 'not a PROXY header' };
  if (buf.length < 16) return { ok: 'incomplete' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { ok: false, error: 'bad PROXY v2 version' };
  const cmd = verCmd & 0x0f;
  const fam = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (len > V2_MAX_BODY) return { ok: false, error: 'PROXY v2 header too long' };
  if (buf.length < 16 + len) return { ok: 'incomplete' };
  const total = 16 + len;
  if (cmd === 0) return { ok: true, length: total };
  if (cmd !== 1) return { ok: false, error: 'bad PROXY v2 command' };
  const body = buf.subarray(16, total);
  if (fam === 0x11) {
    if (len < 12) return { ok: false, error: 'short PROXY v2 address' };
    const address = [...body.subarray(0, 4)].join('.');
    return { ok: true, length: total, client: { address, port: body.readUInt16BE(8) } };
  }
  if (fam === 0x21) {
    if (len < 36) return { ok: false, error: 'short PROXY v2 address' };
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
    const address = net.isIPv6(groups.join(':')) ? compressIPv6(groups) : groups.join(':');
    return { ok: true, length: total, client: { address, port: body.readUInt16BE(32) } };
  }
  return { ok: true, length: total };
}

function compressIPv6(groups: string[]): string {
  // `::ffff:a.b.c.d` clients are IPv4 clients.
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
    const hi = Number.parseInt(groups[6]!, 16);
    const lo = Number.parseInt(groups[7]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  const s = groups.join(':');
  const best = /(?:^|:)0(?::0)+(?::|$)/g;
  let longest = '';
  for (const m of s.matchAll(best)) if (m[0].length > longest.length) longest = m[0];
  return longest === '' ? s : s.replace(longest, '::');
}
