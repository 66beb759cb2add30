import js from "@eslint/js";
import tseslint from "typescript-eslint";

const internal = (dir) => [`**/${dir}/*`, `**/${dir}/**`];
const emulatorOnDemand =
  "only src/commands/emulator.ts loads the emulator, on demand: it is not part of the image";

export default tseslint.config(
  {
    ignores: [
      "src/gen/**",
      "dist/**",
      "packages/*/dist/**",
      "node_modules/**",
      "coverage/**",
      "run/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/return-await": ["error", "in-try-catch"],
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: [
      "src/grpc/**",
      "src/keyvault/**",
      "src/metrics/**",
      "src/log/**",
      // The emulator's command and dev mode load it on demand: it is not in the image.
      "src/commands/emulator.ts",
      "src/commands/dev.ts",
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["@keyvault-kms/emulator"], message: emulatorOnDemand },
            { group: ["@grpc/*"], message: "only src/grpc imports grpc-js" },
            { group: ["@azure/*"], message: "only src/keyvault imports @azure" },
            { group: ["prom-client"], message: "only src/metrics imports prom-client" },
            { group: ["pino"], message: "only src/log imports pino" },
          ],
        },
      ],
    },
  },
  // Module boundaries (docs/architecture.md, "Modules"): the domain imports no transport, cloud or metrics code.
  {
    files: ["src/kms/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["@grpc/*", "@azure/*", "prom-client", "pino", "@keyvault-kms/emulator"],
              message: "src/kms is the pure domain",
            },
            {
              group: [...internal("grpc"), ...internal("keyvault"), ...internal("gen")],
              message: "src/kms is the pure domain",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["src/grpc/**/*.ts", "src/keyvault/**/*.ts", "src/metrics/**/*.ts", "src/log/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["@keyvault-kms/emulator"], message: emulatorOnDemand }] },
      ],
    },
  },
  {
    files: ["packages/emulator/src/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["../*"], message: "the emulator imports nothing from the plugin" },
            { group: ["@grpc/*", "@azure/*", "prom-client"], message: "the emulator stands alone" },
          ],
        },
      ],
    },
  },
  {
    files: ["test/**/*.ts", "packages/*/test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
