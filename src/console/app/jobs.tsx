import { useEffect, useState } from 'preact/hooks';
import { get } from './api.js';
import { Alert, Progress, bytes, duration } from './ui.js';
import { t } from './i18n/index.js';

/** A job run record (src/jobs): what the console shows while a backup, verify or rotation runs. */
export interface JobRun {
  id: number;
  job: string;
  trigger: string;
  actor: string;
  startedAt: number | string;
  endedAt: number | string | null;
  outcome: 'running' | 'succeeded' | 'failed' | 'abandoned';
  progress: { phase: string; done?: number; total?: number; percent?: number; unit?: string } | null;
  error: string | null;
  result?: unknown;
}

/** polls a run until it ends (every second while running) */
export function useJobRun(
  path: string | undefined,
  onEnd?: (r: JobRun) => void,
): { run: JobRun | undefined; error: unknown } {
  const [run, setRun] = useState<JobRun | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    if (!path) return;
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const r = await get<JobRun>(path);
        if (stop) return;
        setRun(r);
        if (r.outcome === 'running') timer = setTimeout(() => void tick(), 1000);
        else onEnd?.(r);
      } catch (e) {
        if (!stop) setError(e);
      }
    };
    setRun(undefined);
    setError(undefined);
    void tick();
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
    };
  }, [path]);
  return { run, error };
}

export function JobProgressView({ run, label }: { run: JobRun; label: string }) {
  const p = run.progress;
  const elapsed = (run.endedAt ? Number(new Date(run.endedAt)) : Date.now()) - Number(new Date(run.startedAt));
  if (run.outcome === 'running') {
    const pct = p?.percent ?? (p?.total ? ((p.done ?? 0) / p.total) * 100 : 0);
    return (
      <div class="stack" data-testid="job-progress" data-outcome={run.outcome}>
        <div class="row">
          <span class="spinner" aria-hidden="true" />
          <strong>{label}</strong>
          <span class="muted">{p?.phase ?? t('common.job.starting')}</span>
          <span class="spacer" />
          <span class="muted small">
            {p?.unit === 'bytes' && p.total
              ? t('common.job.of', { done: bytes(p.done ?? 0), total: bytes(p.total) })
              : p?.total
                ? t('common.job.of', { done: p.done ?? 0, total: p.total })
                : ''}
            {duration(elapsed)}
          </span>
        </div>
        <Progress
          value={pct}
          max={100}
          label={t('common.job.phase', { label, phase: p?.phase ?? t('common.job.starting') })}
        />
      </div>
    );
  }
  return run.outcome === 'succeeded' ? (
    <Alert kind="ok" title={t('common.job.done', { label })}>
      {t('common.job.finishedIn', { duration: duration(elapsed) })}
    </Alert>
  ) : (
    <Alert kind="error" title={t('common.job.phase', { label, phase: t(`operations.outcome.${run.outcome}`) })}>
      {run.error ?? t('common.job.notFinished')}
    </Alert>
  );
}
