// Runs a shell command inside the User-Mode Linux test host by hand, e.g.
//   flock /tmp/qnet-e2e.lock node dist/test/uml/run.js 'node bin/qnet.js doctor'
//   flock /tmp/qnet-e2e.lock node dist/test/uml/run.js --timeout 900 node --test dist/test/uml/impair.test.js
// Prints the job's stdout and stderr, then the kernel and times on stderr; exits with the job's status (1 if none
// came back). Run it under the e2e lock when the command starts guests.
import { runInUml } from './harness.js';

const args = process.argv.slice(2);
let timeoutS = 600;
if (args[0] === '--timeout') {
  timeoutS = Number(args[1]);
  args.splice(0, 2);
}
if (!args.length) {
  process.stderr.write('usage: node dist/test/uml/run.js [--timeout SECONDS] SHELL-COMMAND\n');
  process.exit(2);
}
const r = await runInUml(args.join(' '), { timeoutS, onStart: (dir, pid) => process.stderr.write(`uml: started (pid ${pid}, ${dir})\n`) });
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
process.stderr.write(
  `uml: kernel ${r.kernel || '?'}, booted in ${r.bootS} s, modules loaded at ${r.modulesS} s, ${(r.wallMs / 1000).toFixed(1)} s in all; status ${r.status ?? 'none'}${r.timedOut ? ' (killed at its time bound)' : ''}\n`,
);
if (r.status === null) process.stderr.write(`uml console (last lines):\n${r.console.split('\n').slice(-20).join('\n')}\n`);
process.exit(r.status ?? 1);
