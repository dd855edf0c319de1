// The RAM template of a saved state, as every restored guest of one `up` maps it: a copy of the `.ram` file in a
// sealed memfd (no write, no resize, no hole punch), handed to each QEMU as a descriptor. QEMU 7.2 opens its memory
// file read-write even to map it privately, so a file on disk would need to be writable by the guests' uid, and a
// guest's free page reporting or balloon would then punch holes in it under its siblings; a sealed memfd can be
// opened read-write by anyone holding it and changed by no one. Node has no memfd_create: perl (Essential in
// Debian) makes and seals it, qnet fills it in between.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { RuntimeError } from '../errors.js';
import { copySparse } from './snapshot.js';

// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) (syscall 319 on x86_64); say "PID FD"; when told, seal it with
// F_ADD_SEALS (1033) SEAL|SHRINK|GROW|WRITE (15); say "sealed"; stay until qnet closes stdin (it holds its own fd).
const MEMFD = `use strict; use IO::Handle; STDOUT->autoflush(1);
my $name = "qnet-template"; my $fd = syscall(319, $name, 3); die "memfd_create: $!\\n" if $fd < 0;
open(my $m, "+<&=", $fd) or die "fdopen: $!\\n";
print "$$ $fd\\n"; my $go = <STDIN>;
defined(fcntl($m, 1033, 15)) or die "seal: $!\\n"; print "sealed\\n"; my $end = <STDIN>;`;

/** A sealed in-memory copy of a RAM template; resolves with a descriptor of it (close it when done). */
export function sealedTemplate(ramFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const perl = spawn('perl', ['-e', MEMFD], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let fd: number | undefined;
    const fail = (e: Error) => {
      if (fd !== undefined) closeSync(fd);
      perl.kill('SIGKILL');
      reject(new RuntimeError(`the RAM template ${ramFile} could not be made ready: ${e.message}${err ? ` (${err.trim()})` : ''}`));
    };
    perl.once('error', fail);
    perl.stderr.on('data', (d) => (err += d));
    perl.stdin.on('error', () => {});
    perl.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const made = /^(\d+) (\d+)\n/.exec(out);
      if (made && fd === undefined) {
        try {
          // Its own descriptor of the same memfd, opened through perl's: filled here, then sealed by perl.
          fd = openSync(`/proc/${made[1]}/fd/${made[2]}`, 'r+');
        } catch (e) {
          return fail(e as Error);
        }
        copySparse(ramFile, `/proc/self/fd/${fd}`).then(
          () => perl.stdin.write('seal\n'),
          (e: Error) => fail(e),
        );
      }
      if (/sealed\n/.test(out) && fd !== undefined) {
        perl.stdin.end();
        resolve(fd);
      }
    });
    perl.once('exit', (code) => {
      if (!/sealed\n/.test(out)) fail(new Error(`perl exited (${code})`));
    });
  });
}
