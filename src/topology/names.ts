// The shape of lab and object names (DNS labels), apart from the schema so that cheap callers need not load zod.

/** Lab, node and network names: lower-case letters, digits and inner hyphens. */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** The longest lab name: the names of its namespace, host links and nft table are made from it. */
export const LAB_NAME_MAX = 24;

/** What a lab name may be, as messages say it. */
export const LAB_NAME_RULE = `lower-case letters, digits, inner hyphens, at most ${LAB_NAME_MAX}`;

/** Whether `s` can be a lab's name (so also a safe path component under the run root). */
export function isLabName(s: string): boolean {
  return s.length <= LAB_NAME_MAX && NAME_PATTERN.test(s);
}
