/** Test entry for `runCli` (test/cli-helpers.ts): runs the CLI from source with tsx and sets the exit code. */
import { main } from '../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
