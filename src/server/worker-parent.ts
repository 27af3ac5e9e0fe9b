/**
 * An smtpd worker's links to the primary, whether the worker is a process (an IPC
 * channel for control messages, a socket pair on CHANNEL_FD for frames) or a thread of
 * the primary's process (its parent port, and a MessagePort given in workerData).
 *
 * Postfix counterpart: the status and stream sockets master(8) hands an smtpd(8) process.
 *
 * @module
 */

import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isMainThread, type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { portDuplex } from './port-duplex.js';
import { CHANNEL_FD, type FromWorker, type ToWorker } from './worker-env.js';

/** The worker's end of its links to the primary. */
export interface ParentLink {
  /** The byte stream the frames cross. */
  readonly channel: Duplex;
  /** Sends a control message; resolves once it is handed over (at once without a primary). */
  send(message: FromWorker): Promise<void>;
  /** Control messages from the primary. */
  onMessage(listener: (message: ToWorker) => void): void;
  /**
   * Called when the primary process is gone. Only a worker process can outlive it: a
   * thread ends with its process.
   */
  onGone(listener: () => void): void;
}

/** The links of this worker, process or thread. */
export function parentLink(): ParentLink {
  if (!isMainThread && parentPort) {
    const port = parentPort;
    return {
      channel: portDuplex((workerData as { channel: MessagePort }).channel),
      send: (message) => {
        port.postMessage(message);
        return Promise.resolve();
      },
      onMessage: (listener) => port.on('message', listener),
      onGone: () => undefined,
    };
  }
  return {
    channel: new Socket({ fd: CHANNEL_FD, readable: true, writable: true }),
    send: (message) =>
      new Promise((resolve) => {
        if (!process.connected || !process.send) return resolve();
        process.send(message, undefined, {}, () => resolve());
      }),
    onMessage: (listener) => process.on('message', listener),
    onGone: (listener) => process.on('disconnect', listener),
  };
}
