/** Types of postfix.mjs: a private, loopback-only Postfix instance. */

/** How to get Postfix, for every message that finds it missing. */
export const POSTFIX_INSTALL: string;

/**
 * Why a private Postfix instance cannot run here (what is missing and how to get it), or
 * undefined when it can.
 */
export function postfixProblem(): string | undefined;

/** Options of {@link PostfixInstance.create}. */
export interface PostfixOptions {
  /** Relay everything to this next hop (e.g. `[127.0.0.1]:2526`) instead of discarding it. */
  readonly relayhost?: string;
  /** Keep a maillog (needed by `delivered()`); default true. */
  readonly log?: boolean;
  /** More main.cf settings, by Postfix's names. */
  readonly parameters?: Readonly<Record<string, string>>;
}

/**
 * A private Postfix instance. `create()` writes its files, `start()` runs it, `stop()`
 * stops every process of it and removes its directory (also when it never started).
 */
export class PostfixInstance {
  static create(options?: PostfixOptions): Promise<PostfixInstance>;
  /** The instance's temporary directory. */
  readonly dir: string;
  /** The SMTP port on 127.0.0.1. */
  readonly port: number;
  /** PID of master(8) while it runs. */
  readonly masterPid: number | undefined;
  readonly configDirectory: string;
  readonly queueDirectory: string;
  readonly logFile: string;
  /** Starts master(8) and resolves once the SMTP port accepts connections. */
  start(): Promise<void>;
  /** Stops every process of the instance and removes its directory. */
  stop(): Promise<void>;
  /** The PID in master(8)'s pid file. */
  pid(): number;
  /** Every process of the instance: master(8) and the daemons it runs. */
  processes(): number[];
  /** How many messages are in the queue, not yet delivered. */
  queued(): Promise<number>;
  /** Deliveries the log reports with status=sent; with `service`, only that daemon's. */
  delivered(service?: string): Promise<number>;
  /** Every line of the maillog so far. */
  logLines(): Promise<string[]>;
}
