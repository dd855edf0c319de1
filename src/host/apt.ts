// What apt knows of Debian packages (read-only): the versions it would install.
import type { CommandRunner } from './run.js';

/**
 * The candidate version apt would install of each package, in one apt-cache call (part of image cache keys, so
 * that a package update makes a new image). Packages apt does not know are missing from the result.
 */
export async function aptCandidates(run: CommandRunner, pkgs: string[]): Promise<Record<string, string>> {
  const r = await run.run(['apt-cache', 'policy', ...pkgs], { allowFail: true });
  const out: Record<string, string> = {};
  for (const block of r.stdout.split(/\n(?=\S)/)) {
    const name = /^(\S+):/.exec(block)?.[1];
    const cand = /Candidate:\s*(\S+)/.exec(block)?.[1];
    if (name && cand && cand !== '(none)') out[name] = cand;
  }
  return out;
}

/** The packages of `pkgs` that dpkg does not have installed (one dpkg-query call). */
export async function missingPackages(run: CommandRunner, pkgs: string[]): Promise<string[]> {
  const r = await run.run(['dpkg-query', '-W', '-f', '${Package} ${Status}\\n', ...pkgs], { allowFail: true });
  const ok = new Set(r.stdout.split('\n').filter((l) => / install ok installed$/.test(l)).map((l) => l.split(' ')[0]));
  return pkgs.filter((p) => !ok.has(p));
}

/** The argv that installs Debian packages without questions (and without their recommendations). */
export function aptInstallArgv(pkgs: string[]): string[] {
  return ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs];
}
