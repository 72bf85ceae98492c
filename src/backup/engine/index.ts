import { Worker } from 'node:worker_threads';
import { BackupError } from '../errors.js';
import { engineGcTriggers, workerEntry } from '../../runtime/index.js';
import type { EngineJob, ReadJob, ReadResult, WriteJob, WriteResult } from './jobs.js';

export type { MemberSource, TargetRef, WriteJob, ReadJob, WriteResult, ReadResult } from './jobs.js';

const FROM_SOURCES = import.meta.url.endsWith('.ts');
const WORKER_URL = workerEntry(import.meta.url, './worker', 'engine-worker');

const engineStarted = () => engineGcTriggers.started();
const engineEnded = () => engineGcTriggers.ended();

/**
 * Runs one engine job (./jobs.ts) in its own worker thread and relays its progress. The session
 * key is copied into the worker and wiped there when the job ends; `signal` stops the worker (a
 * half-written `.tmp-` directory is removed by the next run).
 */
export function runEngine(job: WriteJob, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<WriteResult>;
export function runEngine(job: ReadJob, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<ReadResult>;
export function runEngine(
  job: EngineJob,
  onBytes?: (n: number) => void,
  signal?: AbortSignal,
): Promise<WriteResult | ReadResult> {
  engineStarted();
  const done = new Promise<WriteResult | ReadResult>((resolve, reject) => {
    // tests run the TypeScript sources: the worker needs type transformation for them
    const w = new Worker(WORKER_URL, {
      workerData: job,
      ...(FROM_SOURCES ? { execArgv: ['--experimental-transform-types', '--no-warnings=ExperimentalWarning'] } : {}),
    });
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      f();
      void w.terminate();
    };
    const onAbort = () =>
      finish(() =>
        reject(new BackupError('BACKUP_ABORTED', 'stopped: the appliance is shutting down', { httpStatus: 503 })),
      );
    if (signal?.aborted)
      onAbort(); // stopped before the engine started: nothing is sent
    else signal?.addEventListener('abort', onAbort, { once: true });
    w.on(
      'message',
      (
        m:
          | { type: 'progress'; bytes: number }
          | { type: 'done'; result: WriteResult | ReadResult }
          | {
              type: 'error';
              error: {
                message: string;
                code?: string;
                hint?: string;
                httpStatus?: number;
                exitCode?: number;
                retryable?: boolean;
              };
            },
      ) => {
        if (m.type === 'progress') onBytes?.(m.bytes);
        else if (m.type === 'done') finish(() => resolve(m.result));
        else {
          const e = m.error;
          finish(() =>
            reject(
              e.code
                ? new BackupError(e.code, e.message, {
                    ...(e.hint ? { hint: e.hint } : {}),
                    httpStatus: e.httpStatus ?? 500,
                    exitCode: e.exitCode === 2 ? 2 : 1,
                    retryable: e.retryable ?? false,
                  })
                : new BackupError('BACKUP_ENGINE', `backup engine: ${e.message}`),
            ),
          );
        }
      },
    );
    w.on('error', (e) =>
      finish(() => reject(new BackupError('BACKUP_ENGINE', `backup engine failed: ${e.message}`, { cause: e }))),
    );
    w.on('exit', (code) =>
      finish(() => reject(new BackupError('BACKUP_ENGINE', `backup engine stopped (exit ${code})`))),
    );
  });
  void done.then(engineEnded, engineEnded);
  return done;
}
