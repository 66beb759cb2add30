const shared = {
  testEnvironment: "node",
  extensionsToTreatAsEsm: [".ts"],
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  transform: {
    "^.+\\.ts$": ["ts-jest", { useESM: true, tsconfig: "tsconfig.json" }],
  },
};

/** @type {import('jest').Config} */
export default {
  testTimeout: 30000,
  projects: [
    { ...shared, displayName: "all", roots: ["<rootDir>/test"], testMatch: ["**/*.test.ts"] },
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
