// How long an image guest gets to power off after the ACPI power button before QEMU quits (`down --grace`).

/** 30 s: a real OS flushes its disk and stops its services (a Debian guest here takes 2-5 s under TCG). */
export const DEFAULT_GRACE_MS = 30_000;
