// The control channel's line reader: waits started late, or two at once, see every line the guest said.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ControlChannel, waitReady } from '../../src/qemu/control.js';

async function pair(): Promise<{ guest: net.Socket; ch: ControlChannel; done: () => void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-ctl-'));
  const sock = path.join(dir, 'control.sock');
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  const ch = await ControlChannel.connect(sock, 1000);
  const guest = await accepted;
  return { guest, ch, done: () => (ch.destroy(), guest.destroy(), server.close(), rmSync(dir, { recursive: true, force: true })) };
}

test('a wait that starts after the line arrived still sees it; two waits on one channel both see their lines', async () => {
  const { guest, ch, done } = await pair();
  try {
    guest.write('SNAPSHOT\nREA');
    await new Promise((r) => setTimeout(r, 50));
    const snap = ch.waitFor((l) => l === 'SNAPSHOT', (l) => l.startsWith('ERROR'), 1000, 'g');
    const ready = waitReady(ch, 1000, 'g');
    assert.equal(await snap, 'SNAPSHOT');
    guest.write('DY g 1.0\n');
    assert.equal(await ready, 'READY g 1.0');
    // And again, long after: the history is kept.
    assert.equal(await waitReady(ch, 1000, 'g'), 'READY g 1.0');
  } finally {
    done();
  }
});

test('ERROR fails a wait, the guest going away fails it, and a silent guest times out', async () => {
  const a = await pair();
  a.guest.write('ERROR no NIC with MAC 52:54:00:00:00:01\n');
  await assert.rejects(waitReady(a.ch, 1000, 'n1'), /n1: the guest reported ERROR no NIC/);
  a.done();
  const b = await pair();
  const gone = waitReady(b.ch, 1000, 'n2');
  b.guest.destroy();
  await assert.rejects(gone, /n2: the guest went away/);
  b.done();
  const c = await pair();
  await assert.rejects(waitReady(c.ch, 100, 'n3'), /n3: not ready after 0 s/);
  c.done();
});
