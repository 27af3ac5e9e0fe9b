/**
 * vitest global set-up: before any test file runs (and again before each re-run in watch
 * mode), dist/ is rebuilt if any source changed since it was built. Tests spawn
 * bin/postern.mjs and import dist/ (the CLI, postern/testing, the examples), and they
 * must never run against a stale build.
 *
 * @module
 */

import type { TestProject } from 'vitest/node';
import { freshDist } from '../../scripts/fresh-dist.mjs';

export default async function setup(project: TestProject): Promise<void> {
  await freshDist();
  project.onTestsRerun(async () => {
    await freshDist();
  });
}
