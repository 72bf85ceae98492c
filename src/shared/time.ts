/** A stored time (ms since the epoch; PostgreSQL's bigint may come back as a string) as ISO 8601, or null. */
export const isoOrNull = (ms: number | string | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();
