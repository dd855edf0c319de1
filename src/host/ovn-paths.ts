// Where Open vSwitch and OVN keep their sockets and pid files: apart from host/ovn-setup.ts so that discovery (which
// `qnet status` loads with no labs) can look for them without loading what sets a host up.

/** The packages' default directories (/var/run is /run on Debian): the daemons, ovs-vsctl and ovn-*ctl agree on them. */
export const OVS_RUNDIR = '/var/run/openvswitch';
export const OVN_RUNDIR = '/var/run/ovn';
