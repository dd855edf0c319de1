#!/usr/bin/env node
// Entry point: the compiled CLI. `npm run build` (or any of the README's commands) produces dist/.
import { main } from '../dist/src/cli/main.js';
process.exitCode = await main(process.argv.slice(2));
