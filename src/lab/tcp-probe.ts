// Run inside a lab namespace by `up` (ready: {tcp: PORT}): connects to HOST:PORT until it answers, then exits 0;
// exits 1 after DEADLINE_MS. Usage: node tcp-probe.js HOST PORT DEADLINE_MS
import net from 'node:net';

const [host, portText, deadlineText] = process.argv.slice(2);
const port = Number(portText);
const deadline = Date.now() + Number(deadlineText ?? 60000);

function attempt(): void {
  const s = net.connect({ host: host!, port, timeout: 2000 });
  s.once('connect', () => {
    s.destroy();
    process.stdout.write(`open ${host}:${port}\n`);
    process.exit(0);
  });
  const retry = () => {
    s.destroy();
    // A port that refuses (the service is not up yet) is tried again shortly; nothing else waits on it.
    if (Date.now() > deadline) process.exit(1);
    setTimeout(attempt, 250);
  };
  s.once('error', retry);
  s.once('timeout', retry);
}
attempt();
