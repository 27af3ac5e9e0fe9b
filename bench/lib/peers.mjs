// What a benchmark checks before it measures anything: that every peer it compares
// against can run here. A missing peer stops the benchmark with what is missing and how
// to get it; it is never left out of the table silently.
import { findCommand } from '../../test/peers/host.mjs';
import { POSTFIX_INSTALL, postfixProblem } from '../../test/peers/postfix.mjs';

/**
 * Exits with status 69 (EX_UNAVAILABLE) and a message on stderr unless `commands` are
 * installed and, when `postfix` is true, a private Postfix instance can run. `script` is
 * how the user ran the benchmark (e.g. `npm run bench`), for the hint.
 */
export function requirePeers(script, { commands = [], postfix = false }) {
  const problems = [];
  const missing = commands.filter((c) => !findCommand(c));
  if (missing.length > 0) {
    problems.push(`${missing.join(', ')} not found (Postfix's tools); ${POSTFIX_INSTALL}`);
  }
  const pf = postfix ? postfixProblem() : undefined;
  if (pf) problems.push(`the Postfix contender cannot run: ${pf}`);
  if (problems.length === 0) return;
  const hint = pf
    ? `\nFor the Node figures alone, without Postfix: ${script} -- --without-postfix`
    : '';
  process.stderr.write(`${script}: cannot start:\n  - ${problems.join('\n  - ')}${hint}\n`);
  process.exit(69);
}

/**
 * Turns SIGINT and SIGTERM into a normal exit, so that the peers' exit hooks stop every
 * Postfix, Dovecot and smtp-sink this benchmark started.
 */
export function stopOnSignals() {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      process.stderr.write(`\ninterrupted (${signal}); stopping the peers\n`);
      process.exit(130);
    });
  }
}
