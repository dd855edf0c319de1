// The shape of lab and object names (DNS labels), apart from the schema so that cheap callers need not load zod.

/** Lab, node and network names: lower-case letters, digits and inner hyphens. */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
