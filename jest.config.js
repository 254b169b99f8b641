/**
 * Unit tests (test/unit) are pure; integration tests (test/integration) start the real peers of
 * the test bed (test/sandbox) per file. p-retry and is-network-error are ESM-only: ts-jest
 * compiles them to CommonJS like our own code, so they run for real under jest (no mock).
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.[tj]s$": ["ts-jest", { tsconfig: "tsconfig.jest.json" }] },
  transformIgnorePatterns: ["/node_modules/(?!(p-retry|is-network-error)/)"],
  modulePathIgnorePatterns: ["<rootDir>/dist/"],
  testPathIgnorePatterns: ["/node_modules/", "/test/fixtures/"],
  testTimeout: 180_000,
  maxWorkers: 2,
  reporters: ["default", "<rootDir>/test/summaryReporter.js"],
};
