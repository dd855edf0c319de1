// A TCP listener for `qnet check`, run in the lab namespace or on the host: binds each ADDR:PORT given, accepts
// every connection and closes it at once. A port already taken counts as listening (something answers there).
import net from 'node:net';

const servers: net.Server[] = [];
let pending = process.argv.length - 2;
const done = () => {
  if (--pending === 0) process.stdout.write('listening\n');
};
for (const arg of process.argv.slice(2)) {
  const i = arg.lastIndexOf(':');
  const server = net.createServer((s) => s.destroy());
  server.once('error', (e: NodeJS.ErrnoException) => {
    process.stdout.write(`${e.code === 'EADDRINUSE' ? 'taken' : 'error'} ${arg} ${e.code ?? e.message}\n`);
    done();
  });
  server.listen(Number(arg.slice(i + 1)), arg.slice(0, i), done);
  servers.push(server);
}
if (pending === 0) process.stdout.write('listening\n');
process.on('SIGTERM', () => process.exit(0));
// Dies with qnet: its stdin is qnet's pipe.
process.stdin.on('end', () => process.exit(0)).resume();
