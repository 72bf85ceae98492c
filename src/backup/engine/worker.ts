/**
 * Entry of the backup engine's worker thread (./index.ts starts it with the job in workerData).
 * Imports node built-ins only before the engine, so Node can load it directly: compiled, or as
 * TypeScript in the tests, where `.js` specifiers are mapped to the `.ts` sources.
 */
import { registerHooks } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

if (import.meta.url.endsWith('.ts')) {
  registerHooks({
    resolve(specifier, context, next) {
      try {
        return next(specifier, context);
      } catch (e) {
        if (specifier.startsWith('.') && specifier.endsWith('.js'))
          return next(`${specifier.slice(0, -3)}.ts`, context);
        throw e;
      }
    },
  });
}

const port = parentPort!;
const { runRead, runWrite } = (await import('./jobs.js')) as typeof import('./jobs.js');
const job = workerData as import('./jobs.js').EngineJob;
let last = 0;
const report = (bytes: number) => {
  const now = Date.now();
  if (now - last >= 200) {
    last = now;
    port.postMessage({ type: 'progress', bytes });
  }
};
try {
  const result = job.kind === 'write' ? await runWrite(job, report) : await runRead(job, report);
  port.postMessage({ type: 'done', result });
} catch (e) {
  const x = e as Error & { code?: string; hint?: string; httpStatus?: number; exitCode?: number; retryable?: boolean };
  port.postMessage({
    type: 'error',
    error: {
      name: x.name,
      message: x.message,
      code: x.code,
      hint: x.hint,
      httpStatus: x.httpStatus,
      exitCode: x.exitCode,
      retryable: x.retryable,
    },
  });
}
