/**
 * Dates as Postfix writes them: RFC 5322 in Received, Date and DSN fields, ctime(3) in
 * mbox `From ` lines.
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
  // Every message of a busy second gets the same date: made once per second.
  const second = Math.floor(ms / 1000);
  if (second === dateSecond) return dateText;
  const d = new Date(ms);
  dateText =
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000 (UTC)`;
  dateSecond = second;
  return dateText;
}

/** The last second dated, and its text. */
let dateSecond = Number.NaN;
let dateText = '';

/** ctime(3) in UTC, as mbox `From ` lines carry it: `Thu Nov 29 12:00:00 2026`. */
export function ctimeDate(ms: number): string {
  const d = new Date(ms);
  return (
    `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`
  );
}
