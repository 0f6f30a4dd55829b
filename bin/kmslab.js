#!/usr/bin/env node
// The CLI entry: the bundle is built by `npm ci` / `npm install` (the prepare script).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
await import("../dist/cli.js");
