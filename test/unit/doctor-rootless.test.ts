// `qnet doctor` as an ordinary user: what each made-up host means, and the one command that fixes each finding.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { doctorFails, type Finding } from '../../src/lab/doctor.js';
import { FEATURES, rootlessFindings, rootlessPath, type RootlessFacts } from '../../src/lab/doctor-rootless.js';

const all = (ok: boolean) => Object.fromEntries(FEATURES.map((f) => [f, ok])) as Record<(typeof FEATURES)[number], boolean>;

/** A stock Debian 12 desktop: udev made tun 0666, kvm 0660 root:kvm with the user in kvm, pasta installed. */
function stock(): RootlessFacts {
  return {
    uid: 1000,
    user: 'ann',
    dirs: { run: '/run/user/1000/qnet', state: '/home/ann/.local/state/qnet', cache: '/home/ann/.cache/qnet' },
    sysctl: { maxUserNamespaces: '63405', unprivilegedPortStart: '1024' },
    userns: { code: 0, stderr: '' },
    usernsCaps: { code: 0, stderr: '' },
    unsharePath: '/usr/bin/unshare',
    newuidmap: '/usr/bin/newuidmap',
    newgidmap: '/usr/bin/newgidmap',
    subuid: ['100000:65536'],
    subgid: ['100000:65536'],
    tun: { exists: true, mode: 0o20666, uid: 0, gid: 0, group: 'root', rw: true },
    kvm: { exists: true, mode: 0o20660, uid: 0, gid: 993, group: 'kvm', rw: true, member: true, inGroup: true },
    pasta: 'pasta 0.0~git20230309',
    features: all(true),
    modules: { loaded: ['tun', 'bridge', 'veth', 'nf_tables', 'nft_chain_nat', 'nft_masq', 'sch_netem', 'sch_tbf', 'ifb', 'sch_ingress', 'cls_u32', 'act_mirred'], builtin: [] },
  };
}

const find = (fs: Finding[], check: string) => {
  const f = fs.find((x) => x.check === check);
  assert.ok(f, `a finding "${check}"`);
  return f;
};

describe('rootless doctor', () => {
  test('a stock host: every check ok, pasta chosen and why, subordinate ids said optional (capture needs them)', () => {
    const fs = rootlessFindings(stock());
    assert.deepEqual(fs.filter((f) => !f.ok), []);
    assert.equal(doctorFails(fs), false);
    assert.match(find(fs, 'rootless').detail, /uid 1000.*`qnet up` makes your labs there, each kept by a holder process/);
    assert.match(find(fs, 'user-mode uplink (pasta, slirp4netns)').detail, /^pasta \(pasta 0\.0~git20230309\) will carry nat networks and forwards: .*10\.6 Gbit\/s/);
    assert.match(find(fs, 'newuidmap, /etc/subuid, /etc/subgid').detail, /^optional: your own uid .*unshare --map-root-user.*`qnet capture` needs.*Found: newuidmap \/usr\/bin\/newuidmap; .*\/etc\/subuid 100000:65536/);
    assert.match(find(fs, '/dev/kvm').detail, /through group kvm, which you are in/);
    assert.match(find(fs, 'kernel modules').detail, /usable in a user namespace$/);
  });

  test('this machine: tun 0600 is a failure with chmod and the udev rule; kvm 0600 root a warning; no pasta a warning', () => {
    const f = stock();
    f.tun = { exists: true, mode: 0o20600, uid: 0, gid: 0, group: 'root', rw: false };
    f.kvm = { exists: true, mode: 0o20600, uid: 0, gid: 0, group: 'root', rw: false, member: false, inGroup: false };
    delete f.pasta;
    const fs = rootlessFindings(f);
    const tun = find(fs, '/dev/net/tun');
    assert.equal(tun.ok, false);
    assert.equal(tun.warn, undefined);
    assert.match(tun.detail, /^mode 0600 root:root: you cannot open it/);
    assert.match(tun.fix!, /^chmod 0666 \/dev\/net\/tun && echo 'KERNEL=="tun", MODE="0666", OPTIONS\+="static_node=net\/tun"' > \/etc\/udev\/rules\.d\/60-qnet-tun\.rules/);
    const kvm = find(fs, '/dev/kvm');
    assert.equal(kvm.warn, true);
    assert.match(kvm.fix!, /chgrp kvm \/dev\/kvm && chmod 0660 \/dev\/kvm && usermod -aG kvm ann/);
    const up = find(fs, 'user-mode uplink (pasta, slirp4netns)');
    assert.equal(up.warn, true);
    assert.match(up.fix!, /apt-get install passt/);
    assert.equal(doctorFails(fs), true, 'tun is needed by every lab with a bridge');
  });

  test('kvm in group kvm without membership, or added after the login', () => {
    const f = stock();
    f.kvm = { ...f.kvm, rw: false, member: false, inGroup: false };
    assert.equal(find(rootlessFindings(f), '/dev/kvm').fix, 'usermod -aG kvm ann (then log in again)');
    f.kvm.member = true;
    const k = find(rootlessFindings(f), '/dev/kvm');
    assert.match(k.detail, /added to group kvm after you logged in/);
    assert.match(k.fix!, /log in again/);
  });

  test('slirp4netns only: used, and why (pasta missing)', () => {
    const f = stock();
    delete f.pasta;
    f.slirp4netns = 'slirp4netns version 1.2.0';
    const u = find(rootlessFindings(f), 'user-mode uplink (pasta, slirp4netns)');
    assert.equal(u.ok, true);
    assert.match(u.detail, /^slirp4netns \(slirp4netns version 1\.2\.0\) will carry .* because pasta is not installed/);
  });

  test('Ubuntu 24.04: AppArmor leaves the namespace powerless; the profile for unshare (or the sysctl) is the fix', () => {
    const f = stock();
    f.sysctl.apparmorRestrict = '1';
    f.usernsCaps = { code: 2, stderr: 'RTNETLINK answers: Operation not permitted\n' };
    f.features = null;
    const fs = rootlessFindings(f);
    const aa = find(fs, 'AppArmor userns restriction');
    assert.equal(aa.ok, false);
    assert.match(aa.detail, /is 1 .*no capabilities.*\/usr\/bin\/unshare/);
    assert.match(aa.fix!, /^printf 'abi <abi\/4\.0>,.*profile qnet-unshare \/usr\/bin\/unshare flags=\(unconfined\) \{\\n  userns,\\n\}\\n' > \/etc\/apparmor\.d\/qnet-unshare && apparmor_parser -r \/etc\/apparmor\.d\/qnet-unshare/);
    assert.match(aa.fix!, /kernel\.apparmor_restrict_unprivileged_userns=0/);
    const u = find(fs, 'user namespaces (unshare -Urn)');
    assert.equal(u.ok, false);
    assert.match(u.detail, /^made, but its root may not configure .*Operation not permitted/);
    assert.equal(u.fix, 'the fix above');
    // Restricted, but a profile already allows unshare: ok.
    const g = stock();
    g.sysctl.apparmorRestrict = '1';
    assert.equal(find(rootlessFindings(g), 'AppArmor userns restriction').ok, true);
  });

  test('Debian 10 and user namespaces turned off: the sysctl to set, persistently', () => {
    const f = stock();
    f.sysctl.unprivilegedUsernsClone = '0';
    f.sysctl.maxUserNamespaces = '0';
    f.userns = { code: 1, stderr: 'unshare: unshare failed: Operation not permitted\n' };
    f.usernsCaps = null;
    f.features = null;
    const fs = rootlessFindings(f);
    assert.match(find(fs, 'kernel.unprivileged_userns_clone').fix!, /^echo 'kernel\.unprivileged_userns_clone=1' > \/etc\/sysctl\.d\/60-qnet-rootless\.conf && sysctl -p /);
    assert.match(find(fs, 'user.max_user_namespaces').fix!, /user\.max_user_namespaces=65536/);
    assert.match(find(fs, 'user namespaces (unshare -Urn)').detail, /^cannot be made: unshare: unshare failed: Operation not permitted/);
  });

  test('modules a user cannot load: named, with modprobe and the file that loads them at boot', () => {
    const f = stock();
    f.features = { ...all(true), bridge: false, netem: false, mirred: false };
    f.modules = { loaded: ['tun', 'veth', 'nf_tables', 'nft_chain_nat', 'nft_masq', 'sch_tbf', 'ifb', 'sch_ingress'], builtin: [] };
    const fs = rootlessFindings(f);
    const m = find(fs, 'kernel modules');
    assert.equal(m.ok, false);
    assert.match(m.detail, /^bridge: not usable in a user namespace; not loaded: bridge$/);
    assert.equal(m.fix, "modprobe -a bridge && printf 'bridge\\n' > /etc/modules-load.d/qnet.conf (a user cannot load modules; the file loads them at boot)");
    const imp = find(fs, 'impairments (tc)');
    assert.equal(imp.warn, true);
    assert.match(imp.detail, /netem \(sch_netem\): delay, jitter, loss, duplicate and corrupt cannot be set \(not loaded: sch_netem\)/);
    assert.match(imp.fix!, /^modprobe -a sch_netem /);
    assert.match(find(fs, 'links (tc ingress, u32, mirred)').fix!, /^modprobe -a cls_u32 act_mirred /);
    // A kernel that loads no modules: the options it must have built in.
    f.modules = null;
    assert.match(find(rootlessFindings(f), 'impairments (tc)').fix!, /cannot load modules: a kernel with CONFIG_NET_SCH_NETEM/);
    // No /dev/net/tun: the tun module.
    f.tun = { exists: false, rw: false };
    f.modules = { loaded: [], builtin: [] };
    assert.match(find(rootlessFindings(f), '/dev/net/tun').fix!, /^modprobe tun/);
  });

  test('no runtime directory: a failure saying what root runs', () => {
    const f = stock();
    f.dirs = { runError: 'XDG_RUNTIME_DIR is not set: …', state: '/s', cache: '/c' };
    const d = find(rootlessFindings(f), 'directories (XDG)');
    assert.equal(d.ok, false);
    assert.match(d.fix!, /install -d -m 0700 -o 1000 \/run\/user\/1000/);
  });

  test('a user\'s PATH gets the sbin directories, once', () => {
    assert.equal(rootlessPath({ PATH: '/usr/bin:/bin' }), '/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin');
    assert.equal(rootlessPath({ PATH: '/usr/sbin:/usr/bin' }), '/usr/sbin:/usr/bin:/usr/local/sbin:/sbin');
  });
});
