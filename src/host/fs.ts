// Small file-system helpers shared by the modules that touch the host.
import { constants as fsc } from 'node:fs';
import { access } from 'node:fs/promises';

/** True when the path exists (without following errors into exceptions). */
export async function exists(p: string): Promise<boolean> {
  try {
    await access(p, fsc.F_OK);
    return true;
  } catch {
    return false;
  }
}
