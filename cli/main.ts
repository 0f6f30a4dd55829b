import { main } from "./program.js";

// The bin's entry point: everything testable lives in program.ts.
process.exitCode = await main(process.argv.slice(2));
