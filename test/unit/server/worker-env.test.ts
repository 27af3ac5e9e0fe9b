import { describe, expect, it } from 'vitest';
import { workerExecArgv } from '../../../src/server/worker-env.js';

describe('workerExecArgv', () => {
  it("adds --no-memory-reducer after the primary's own flags", () => {
    expect(workerExecArgv([])).toEqual(['--no-memory-reducer']);
    expect(workerExecArgv(['--enable-source-maps'])).toEqual([
      '--enable-source-maps',
      '--no-memory-reducer',
    ]);
  });

  it('leaves the memory reducer as the operator set it, in either spelling', () => {
    expect(workerExecArgv(['--memory-reducer'])).toEqual(['--memory-reducer']);
    expect(workerExecArgv(['--no_memory_reducer'])).toEqual(['--no_memory_reducer']);
  });
});
