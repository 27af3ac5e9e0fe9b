/**
 * RFC 5322 dates as Postfix writes them in Received, Date and DSN fields.
 *
 * STANDARDS: RFC 5322 section 3.3 (date-time).
 *
 * @module
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = [
  'Jan',
  'Feb',
  'Mar',
  'Apr',
  'May',
  'Jun',
  'Jul',
  'Aug',
  'Sep',
  'Oct',
  'Nov',
  'Dec',
] as const;

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** UTC with Postfix's zone comment: `Sun, 29 Nov 2026 12:00:00 +0000 (UTC)`. */
export function mailDate(ms: number): string {
  const d = new Date(ms);
  return (
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000 (UTC)`
  );
}
