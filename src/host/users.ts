// Looking up the unprivileged user that guests run as.
import { readFile } from 'node:fs/promises';
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
