// Where a caller's labs live and how a command reaches one: one interface, two kinds. Root's labs are named network
// namespaces of the host (/run/netns/qnet-LAB): a command runs where it is and enters a lab by its name. An ordinary
// user's labs each live in a holder's user, mount and network namespaces (rootless/holder.ts): a command on one runs
// again inside its holder, where the lab's namespace has that same name, so the rest of qnet is the same for both.
import { rootless, runRoot } from '../dirs.js';
import { listLabs } from './discover.js';
import { joinArgv, labHome, ownLabs, readHolder } from './rootless/holder.js';

export interface LabSpace {
  /** `host`: root's labs, in the host's own namespaces; `holder`: a user's, each in a holder's. */
  readonly kind: 'host' | 'holder';
  /** Names of the labs this caller may see and touch (a user: their own, and nobody else's). */
  labs(): Promise<string[]>;
  /**
   * The argv prefix under which a command reaches the lab's namespace by name: none where the caller already is
   * (root), the holder's join for a user's lab; null when the user has no running lab of that name.
   */
  entry(lab: string): Promise<string[] | null>;
}

/** Root's labs: named namespaces of the host, reached where qnet runs. */
export const hostSpace: LabSpace = { kind: 'host', labs: () => listLabs(), entry: async () => [] };

/** A user's labs: each in its holder's namespaces, found under the user's runtime directory, joined by nsenter. */
export const holderSpace: LabSpace = {
  kind: 'holder',
  labs: async () => ownLabs(runRoot()),
  entry: async (lab) => {
    const rec = await readHolder(labHome(runRoot(), lab));
    return rec ? joinArgv(rec) : null;
  },
};

/** The space of this process's labs: root's, or an ordinary user's. */
export function labSpace(): LabSpace {
  return rootless() ? holderSpace : hostSpace;
}
