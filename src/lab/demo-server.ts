// A tiny HTTP server for the demo, run inside a lab namespace: serves one page and reports each client's address.
import http from 'node:http';

const port = Number(process.argv[2] ?? 8080);
const token = process.argv[3] ?? 'qnet';
const bind = process.argv[4] ?? '127.0.0.1';
const server = http.createServer((req, res) => {
  process.stdout.write(`peer ${req.socket.remoteAddress} ${req.url}\n`);
  res.end(`hello from the host side of the lab (${token})\n`);
});
server.listen(port, bind, () => process.stdout.write(`listening ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
