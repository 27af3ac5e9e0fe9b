/**
 * SyncWindow: a queue store's listeners run in the window of the next fdatasync (on the
 * turn after it starts), after the longest wait when none starts, once per schedule,
 * and not at all once cancelled; AvailableListeners keeps that wait for commits only.
 *
 * @module
 */

import { describe, expect, it } from 'vitest';
import { Logger } from '../../../../src/log.js';
import { AvailableListeners } from '../../../../src/queue/stores/available-listeners.js';
import { SyncWindow } from '../../../../src/queue/stores/sync-window.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SyncWindow', () => {
  it('runs a scheduled call on the turn after an fdatasync starts, not before', async () => {
    // A wait no test run reaches: only the fdatasync can start the call.
    const window = new SyncWindow(600_000);
    let calls = 0;
    window.schedule(() => calls++);
    for (let i = 0; i < 5; i++) await turn();
    expect(calls).toBe(0);
    window.syncStarted();
    // Not inside the committer's batch: on a later turn.
    expect(calls).toBe(0);
    await turn();
    expect(calls).toBe(1);
    // A second fdatasync with nothing scheduled calls nothing.
    window.syncStarted();
    await turn();
    expect(calls).toBe(1);
  });

  it('ignores an fdatasync that started before the call was scheduled, and runs each call once', async () => {
    const window = new SyncWindow(600_000);
    window.syncStarted();
    let calls = 0;
    window.schedule(() => calls++);
    await turn();
    expect(calls).toBe(0);
    window.syncStarted();
    window.syncStarted();
    await turn();
    await turn();
    expect(calls).toBe(1);
  });

  it('runs the call after the longest wait when no fdatasync starts', async () => {
    const window = new SyncWindow(1);
    let calls = 0;
    await new Promise<void>((resolve) =>
      window.schedule(() => {
        calls++;
        resolve();
      }),
    );
    window.syncStarted();
    await turn();
    expect(calls).toBe(1);
  });

  it('drops a waiting call when cancelled', async () => {
    const window = new SyncWindow(600_000);
    let calls = 0;
    window.schedule(() => calls++);
    window.cancel();
    window.syncStarted();
    await turn();
    expect(calls).toBe(0);
  });
});

describe('AvailableListeners with a schedule for commits', () => {
  it('waits for the commit schedule, runs sooner on a plain notify, and calls listeners once per wait', async () => {
    let held: (() => void) | undefined;
    const listeners = new AvailableListeners(setImmediate, new Logger([]).for('queue'), (call) => {
      held = call;
    });
    let calls = 0;
    listeners.add(() => calls++);
    listeners.notifyCommitted();
    listeners.notifyCommitted();
    await turn();
    expect(calls).toBe(0);
    // A release or a due retry does not wait for the journal.
    listeners.notify();
    await turn();
    expect(calls).toBe(1);
    // The commit's call, when it comes, has nothing left to do.
    held?.();
    expect(calls).toBe(1);
    listeners.notifyCommitted();
    held?.();
    expect(calls).toBe(2);
  });
});
