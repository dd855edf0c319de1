// stopGuest with ACPI: a guest that ignores the first press of the power button (still starting: nobody listens to
// the button yet) is pressed again until it powers off, within the grace. A QMP server on a Unix socket stands in
// for QEMU: it answers every command and "powers off" (closes the monitor) at the second press.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ACPI_REPEAT_MS, stopGuest } from '../../src/qemu/guest.js';
import { nodeFiles } from '../../src/render/qemu.js';

test('the ACPI button is pressed again while the guest has not powered off; it then counts as powered off', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-stop-'));
  const files = nodeFiles(dir);
  const commands: string[] = [];
  const server = net.createServer((sock) => {
    sock.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + '\n');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { execute: string; id?: string };
        commands.push(msg.execute);
        sock.write(JSON.stringify({ return: {}, ...(msg.id !== undefined ? { id: msg.id } : {}) }) + '\n');
        if (commands.filter((c) => c === 'system_powerdown').length === 2) sock.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(files.qmp, r));
  try {
    const t0 = Date.now();
    const how = await stopGuest(undefined, files, { acpi: true, graceMs: 4 * ACPI_REPEAT_MS });
    assert.equal(how, 'powered off');
    assert.deepEqual(commands.filter((c) => c !== 'qmp_capabilities'), ['system_powerdown', 'system_powerdown']);
    assert.ok(Date.now() - t0 >= ACPI_REPEAT_MS - 100, 'the second press comes after the repeat interval');
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
