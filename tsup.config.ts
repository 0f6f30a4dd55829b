import { defineConfig } from "tsup";

// One ESM bundle for the CLI, with the AWS SDK, XState, zod, JSONata and commander inside it: loaded
// from node_modules file by file they made `kmslab --version` take 0.6 s, bundled 0.27 s (a bundle
// starts about three times faster, see the project's measured facts on cold start). asl-validator
// stays outside: it is loaded only when a definition is validated (asl/validator.ts).
export default defineConfig({
  entry: { cli: "cli/main.ts", index: "sim/index.ts" },
  format: ["esm"],
  platform: "node",
  target: "node20",
  outDir: "dist",
  sourcemap: true,
  clean: true,
  splitting: true,
  noExternal: [/^@aws-sdk\//, /^@smithy\//, "xstate", "zod", "jsonata", "commander"],
  // The bundled CommonJS packages require Node's built-ins: the ESM bundle gets a `require` for them.
  banner: {
    js: 'import { createRequire as __kmslabCreateRequire } from "node:module"; const require = __kmslabCreateRequire(import.meta.url);',
  },
  esbuildOptions(options) {
    options.mainFields = ["module", "main"];
  },
});
