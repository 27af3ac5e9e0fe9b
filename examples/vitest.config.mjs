// Vitest settings for examples/: only ci-testing.test.mjs (examples/testing/ has its own).
import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { include: ['ci-testing.test.mjs'] } });
