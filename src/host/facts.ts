// What this machine can hold, read without changing anything: for placing a lab's nodes on its hosts.
import { readFile } from 'node:fs/promises';
import os from 'node:os';

/** This machine's available memory (MemAvailable, MiB) and online CPUs. */
export async function localHostFacts(): Promise<{ memoryMiB: number; cpus: number }> {
  const text = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const kib = Number(/^MemAvailable:\s+(\d+) kB$/m.exec(text)?.[1] ?? NaN);
  const memoryMiB = Number.isFinite(kib) ? Math.floor(kib / 1024) : Math.floor(os.freemem() / 2 ** 20);
  return { memoryMiB, cpus: os.availableParallelism() };
}
