// Looking up the unprivileged user that guests run as.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { insideHolder } from '../dirs.js';
import { RuntimeError } from '../errors.js';

/** uid and gid of a local user, from /etc/passwd; a clear error if the user does not exist. */
export async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === user) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new RuntimeError(
    `user "${user}" does not exist; guests run as that unprivileged user. Create it with ` +
      `\`useradd --system --no-create-home --shell /usr/sbin/nologin ${user}\` (or run \`npm run setup\`)`,
  );
}

/** First and count of the numeric ids given to labs' guests (no passwd entries: nothing else uses them). */
export const LAB_ID_BASE = 1_900_000_000;
export const LAB_ID_SPAN = 50_000_000;

/**
 * The uid/gid that a lab's QEMU processes run as: one per lab, derived from its name, so that a guest of one
 * lab cannot open another lab's sockets or files (each lab's node directories are 0700 and owned by it).
 */
export function labIds(lab: string): { uid: number; gid: number } {
  // In a user's lab holder only uid 0 (the user) is mapped: the user's own ids are the only ones a guest can have.
  if (insideHolder()) return { uid: 0, gid: 0 };
  const h = parseInt(createHash('sha256').update(`ids/${lab}`).digest('hex').slice(0, 8), 16) % LAB_ID_SPAN;
  return { uid: LAB_ID_BASE + h, gid: LAB_ID_BASE + h };
}
