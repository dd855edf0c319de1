// `qnet console`: an interactive serial console on the terminal; Ctrl-] detaches (as telnet and virsh).
import net from 'node:net';

/** Byte that detaches from the console (Ctrl-]). */
export const DETACH_BYTE = 0x1d;

/** Connects the terminal to a console socket until the user detaches or the guest goes away. */
export function attachConsole(socketPath: string, title: string): Promise<number> {
  return new Promise((resolve) => {
    const sock = net.connect(socketPath);
    const stdin = process.stdin;
    const restore = () => {
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onInput);
    };
    const onInput = (d: Buffer) => {
      const i = d.indexOf(DETACH_BYTE);
      if (i >= 0) {
        if (i > 0) sock.write(d.subarray(0, i));
        restore();
        sock.destroy();
        // Nothing else is read from the terminal: let the process end.
        if (!stdin.isTTY) stdin.destroy();
        process.stderr.write('\r\n[detached]\r\n');
        resolve(0);
        return;
      }
      sock.write(d);
    };
    sock.once('connect', () => {
      process.stderr.write(`[connected to ${title}; detach with Ctrl-]]\r\n`);
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.on('data', onInput);
      // Piped input (not a terminal): when it ends, give the guest a moment to answer, then detach.
      stdin.once('end', () => setTimeout(() => sock.end(), 1500));
      stdin.resume();
      sock.write('\n'); // wake the shell's prompt
    });
    sock.on('data', (d) => process.stdout.write(d));
    sock.once('error', (e) => {
      restore();
      process.stderr.write(`console: ${(e as NodeJS.ErrnoException).code ?? e.message} (is the guest up? see \`qnet status\`)\n`);
      resolve(1);
    });
    sock.once('close', () => {
      restore();
      resolve(0);
    });
  });
}
