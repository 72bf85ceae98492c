import { AsyncLocalStorage } from 'node:async_hooks';

const scope = new AsyncLocalStorage<true>();

/**
 * Runs `fn` with its changes committed but not waited for on the disk (SQLite's group commit,
 * src/db/wal-sync.ts; on PostgreSQL the server decides and nothing changes). They become durable
 * with the next change that is waited for: the WAL is replayed in order, so a change on the disk
 * brings every earlier one with it.
 *
 * Only for changes that a later, waited-for commit of the same operation depends on, or whose loss
 * at a power cut is harmless and repaired (a pending-upload row and its data key before the
 * version that uses them; a receipt's signature, signed again when fetched). A caller is never
 * told "stored" on the strength of a change made here alone.
 */
export function unwaited<T>(fn: () => Promise<T>): Promise<T> {
  return scope.run(true, fn);
}

/** Whether the current change may skip waiting for its flush (inside `unwaited`). */
export const flushWaived = (): boolean => scope.getStore() === true;
