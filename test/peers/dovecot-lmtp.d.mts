/** Types of dovecot-lmtp.mjs: a throwaway Dovecot LMTP server. */

/**
 * Why a Dovecot LMTP server cannot run here (what is missing and how to get it), or
 * undefined when it can.
 */
export function dovecotProblem(): string | undefined;

/**
 * A Dovecot LMTP server. `start()` writes its files and runs it; `stop()` stops every
 * process of it and removes its directory.
 */
export class DovecotLmtp {
  /** Starts a server that knows `users` (local parts) and resolves once LMTP accepts. */
  static start(users: readonly string[]): Promise<DovecotLmtp>;
  /** The server's temporary directory. */
  readonly dir: string;
  /** The LMTP port on 127.0.0.1. */
  readonly port: number;
  /** PID of the dovecot master while it runs. */
  readonly masterPid: number | undefined;
  /** The Maildir of `user`. */
  maildir(user: string): string;
  /** Every process of the server: the dovecot master and the services it runs. */
  processes(): number[];
  /** Stops every process of the server and removes its directory. */
  stop(): Promise<void>;
}
