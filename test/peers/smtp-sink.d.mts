/** Types of smtp-sink.mjs: Postfix's smtp-sink on a free loopback port. */

/** Why smtp-sink cannot run here (what is missing and how to get it), or undefined. */
export function smtpSinkProblem(): string | undefined;

/** A running smtp-sink. */
export interface SmtpSink {
  /** The port on 127.0.0.1. */
  readonly port: number;
  /** Where messages are dumped (one file each), with `dump: true`. */
  readonly dir: string | undefined;
  readonly pid: number;
  /** Stops it and removes the dump directory. */
  stop(): Promise<void>;
}

/**
 * Starts smtp-sink with extra `flags`; with `dump: true` every message lands in a file
 * of `dir`. Resolves once the port accepts connections.
 */
export function startSmtpSink(options?: {
  readonly flags?: readonly string[];
  readonly dump?: boolean;
  readonly backlog?: number;
}): Promise<SmtpSink>;
