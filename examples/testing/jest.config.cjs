// Jest settings for this folder only: run the jest example, not the vitest and node:test ones.
module.exports = { testEnvironment: 'node', testMatch: ['<rootDir>/jest.test.cjs'] };
