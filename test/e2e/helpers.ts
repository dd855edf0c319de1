// Shared helpers for end-to-end tests: the real CLI, temp topologies, and a host snapshot to prove nothing is left.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { findGuestProcesses } from '../../src/qemu/process.js';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const QNET = path.join(ROOT, 'bin', 'qnet.js');

/** A lab name unique to this test run (labs of concurrent runs never collide). */
export function labName(base: string): string {
  return `${base}-${process.pid.toString(36)}`.slice(0, 24);
}

/** Writes a topology object as YAML to a temp file and returns its path. */
export function writeTopology(topo: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-'));
  const file = path.join(dir, 'lab.yaml');
  writeFileSync(file, stringify(topo));
  return file;
}

/** Runs the real CLI to completion. */
export function qnet(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [QNET, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface HostSnapshot {
  netns: string[];
  links: string[];
  nftTables: string[];
  routes: string[];
  guests: string[];
  runDirs: string[];
}

function lines(argv: string[]): string[] {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
}

/** What exists on the host that a lab could leave behind. */
export async function snapshot(): Promise<HostSnapshot> {
  const runRoot = process.env.QNET_RUN_DIR ?? '/run/qnet';
  return {
    netns: lines(['ip', 'netns', 'list']).map((l) => l.split(' ')[0]!).sort(),
    links: lines(['ip', '-o', 'link', 'show']).map((l) => l.split(':')[1]!.trim().split('@')[0]!).sort(),
    nftTables: lines(['nft', 'list', 'tables']).sort(),
    routes: lines(['ip', 'route', 'show', 'table', 'all']).sort(),
    guests: (await findGuestProcesses()).map((p) => `${p.lab}/${p.node}:${p.pid}`).sort(),
    runDirs: existsSync(runRoot) ? readdirSync(runRoot).sort() : [],
  };
}

/** Resolves once `file` contains `text` (watching the file; bounded by `timeoutMs`). */
export async function waitForText(file: string, text: string, timeoutMs: number): Promise<void> {
  const { readFileSync, watch } = await import('node:fs');
  const has = () => {
    try {
      return readFileSync(file, 'utf8').includes(text);
    } catch {
      return false;
    }
  };
  if (has()) return;
  await new Promise<void>((resolve, reject) => {
    const dir = path.dirname(file);
    const w = watch(dir, () => {
      if (has()) finish();
    });
    // The watch covers appends; a slow fallback check covers file systems that miss events.
    const iv = setInterval(() => has() && finish(), 500);
    const t = setTimeout(() => {
      w.close();
      clearInterval(iv);
      reject(new Error(`${file} did not show "${text}" within ${timeoutMs} ms`));
    }, timeoutMs);
    function finish() {
      w.close();
      clearInterval(iv);
      clearTimeout(t);
      resolve();
    }
  });
}
