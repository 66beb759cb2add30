const shared = {
  testEnvironment: "node",
  extensionsToTreatAsEsm: [".ts"],
  moduleNameMapper: {
    // The workspace's emulator package, from its sources (as tsconfig.json's paths do).
    "^@keyvault-kms/emulator$": "<rootDir>/packages/emulator/src/index.ts",
    "^(\\.{1,2}/.*)\\.js$": "$1",
  },
  transform: {
    "^.+\\.ts$": ["ts-jest", { useESM: true, tsconfig: "tsconfig.json" }],
  },
};

/** @type {import('jest').Config} */
export default {
  testTimeout: 30000,
  projects: [
    {
      ...shared,
      displayName: "all",
      roots: ["<rootDir>/test", "<rootDir>/packages/emulator/test"],
      testMatch: ["**/*.test.ts"],
    },
    // The conformance suites again, against an access-policy vault that grants exactly what
    // docs/install.md tells operators to grant (test/helpers/plugin-harness.ts reads the variable).
    {
      ...shared,
      displayName: "least-permissions",
      roots: ["<rootDir>/test/conformance"],
      testMatch: ["**/*.test.ts"],
      setupFiles: ["<rootDir>/test/helpers/least-permissions.ts"],
    },
  ],
};
