import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { AppError } from '../shared/errors.js';
import { action, emit, jsonOption, type Io } from './output.js';
import { clientFromEnv } from './client.js';

interface Summary {
  id: string;
  title: string;
  severity: string;
  status: string;
  detectedAt: string;
  personalData: boolean;
  breachClock: { state: string; deadline: string; remainingMs: number } | null;
}
interface Full extends Summary {
  rootCause: string | null;
  actions: { id: string; kind: string; state: string; description: string }[];
  updates: { at: string; status: string; message: string; public: boolean }[];
}

const SEVERITIES = ['low', 'medium', 'high', 'critical'];
const STATUSES = ['investigating', 'identified', 'monitoring', 'resolved'];
const time = (name: string) => (v: string) => {
  if (!/^\d{4}-\d{2}-\d{2}T/.test(v) || !Number.isFinite(Date.parse(v)))
    throw new AppError('USAGE', `${name} must be an ISO 8601 time, e.g. 2026-12-07T09:30:00Z (got "${v}")`, {
      exitCode: 2,
    });
  return new Date(Date.parse(v)).toISOString();
};
const clockLine = (c: Summary['breachClock']) =>
  c ? `  GDPR clock: ${c.state}, deadline ${c.deadline} (${Math.round(c.remainingMs / 3_600_000)} h left)` : '';
const one = (i: Summary) =>
  `${i.id}  ${i.status.padEnd(13)} ${i.severity.padEnd(8)} ${i.title}${i.personalData ? '  [personal data]' : ''}`;
const show = (i: Full) =>
  [
    one(i),
    `  detected ${i.detectedAt}`,
    clockLine(i.breachClock),
    i.rootCause ? `  root cause: ${i.rootCause}` : '',
    ...i.actions.map((a) => `  action ${a.id} ${a.kind} ${a.state}: ${a.description}`),
    ...i.updates.map((u) => `  ${u.at} ${u.status}${u.public ? ' (public)' : ''}: ${u.message}`),
  ]
    .filter(Boolean)
    .join('\n');

/**
 * `coffre incident …` (client commands, API token; docs/cli.md and docs/incidents.md): the same
 * register as the console. Admins manage; auditors read and export.
 */
export function registerIncident(program: Command, io: Io): void {
  const inc = program
    .command('incident')
    .description('the incident register (client commands: COFFRE_URL, COFFRE_TOKEN)');
  const api = () => clientFromEnv({ needToken: true });

  inc
    .command('list')
    .description('incidents, newest first')
    .addOption(
      new Option('--status <status>', 'only this status (or "open": not resolved)').choices([
        'draft',
        ...STATUSES,
        'open',
      ]),
    )
    .addOption(jsonOption())
    .action(
      action(io, async (o: { status?: string; json?: boolean }) => {
        const r = await api().json<{ incidents: Summary[] }>(
          'GET',
          `/incidents${o.status ? `?status=${o.status}` : ''}`,
        );
        emit(io, o.json, r, () => r.incidents.map(one).join('\n') || 'no incidents');
      }),
    );

  inc
    .command('show <id>')
    .description('one incident: timeline, actions, breach clock')
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, o: { json?: boolean }) => {
        const r = await api().json<Full>('GET', `/incidents/${encodeURIComponent(id)}`);
        emit(io, o.json, r as unknown as Record<string, unknown>, () => show(r));
      }),
    );

  inc
    .command('open <title>')
    .description('open an incident (status investigating)')
    .addOption(
      new Option('--severity <severity>', 'low, medium, high or critical').choices(SEVERITIES).makeOptionMandatory(),
    )
    .option('--personal-data', 'personal data is involved (starts the GDPR 72-hour clock)')
    .option('--detected-at <time>', 'when it was detected (ISO 8601; default now)', time('--detected-at'))
    .option('--message <text>', 'first timeline entry')
    .option('--component <name...>', 'affected components')
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (
          title: string,
          o: {
            severity: string;
            personalData?: boolean;
            detectedAt?: string;
            message?: string;
            component?: string[];
            json?: boolean;
          },
        ) => {
          const r = await api().json<Full>('POST', '/incidents', {
            title,
            severity: o.severity,
            ...(o.personalData ? { personalData: true } : {}),
            ...(o.detectedAt ? { detectedAt: o.detectedAt } : {}),
            ...(o.message ? { message: o.message } : {}),
            ...(o.component ? { components: o.component } : {}),
          });
          emit(io, o.json, r as unknown as Record<string, unknown>, () => show(r));
        },
      ),
    );

  inc
    .command('update <id>')
    .description(
      'a timeline update, possibly changing the status; resolving needs every action closed (exit 1, INCIDENT_ACTIONS_OPEN)',
    )
    .addOption(new Option('--status <status>', 'the status after this update').choices(STATUSES).makeOptionMandatory())
    .requiredOption('--message <text>', 'what happened (internal)')
    .option('--public-en <text>', 'public message in English (status page, banner, e-mail)')
    .option('--public-fr <text>', 'public message in French')
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (
          id: string,
          o: { status: string; message: string; publicEn?: string; publicFr?: string; json?: boolean },
        ) => {
          const pub =
            o.publicEn || o.publicFr
              ? {
                  publicMessage: {
                    ...(o.publicEn ? { en: o.publicEn } : {}),
                    ...(o.publicFr ? { fr: o.publicFr } : {}),
                  },
                }
              : {};
          const r = await api().json<Full>('POST', `/incidents/${encodeURIComponent(id)}/updates`, {
            status: o.status,
            message: o.message,
            ...pub,
          });
          emit(io, o.json, r as unknown as Record<string, unknown>, () => show(r));
        },
      ),
    );

  inc
    .command('edit <id>')
    .description('root cause, severity, public title, when the authority was notified')
    .addOption(new Option('--severity <severity>').choices(SEVERITIES))
    .option('--root-cause <text>')
    .option('--public-title <text>', 'the title public updates show')
    .option(
      '--authority-notified-at <time>',
      'when the supervisory authority was notified (ISO 8601)',
      time('--authority-notified-at'),
    )
    .option('--breach-file <file>', 'JSON file with the breach notification content (docs/incidents.md)')
    .option('--dora-file <file>', 'JSON file with the DORA fields (docs/incidents.md)')
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (
          id: string,
          o: {
            severity?: string;
            rootCause?: string;
            publicTitle?: string;
            authorityNotifiedAt?: string;
            breachFile?: string;
            doraFile?: string;
            json?: boolean;
          },
        ) => {
          const readJson = (f: string, what: string) => {
            try {
              return JSON.parse(fs.readFileSync(f, 'utf8')) as unknown;
            } catch (e) {
              throw new AppError(
                'USAGE',
                `${what}: cannot read JSON from ${f} (${(e as NodeJS.ErrnoException).code ?? 'not JSON'})`,
                { exitCode: 2 },
              );
            }
          };
          const body = {
            ...(o.severity ? { severity: o.severity } : {}),
            ...(o.rootCause ? { rootCause: o.rootCause } : {}),
            ...(o.publicTitle ? { publicTitle: o.publicTitle } : {}),
            ...(o.authorityNotifiedAt ? { authorityNotifiedAt: o.authorityNotifiedAt } : {}),
            ...(o.breachFile ? { breach: readJson(o.breachFile, '--breach-file') } : {}),
            ...(o.doraFile ? { dora: readJson(o.doraFile, '--dora-file') } : {}),
          };
          if (!Object.keys(body).length)
            throw new AppError('USAGE', 'nothing to change', { exitCode: 2, hint: 'see coffre incident edit --help' });
          const r = await api().json<Full>('PATCH', `/incidents/${encodeURIComponent(id)}`, body);
          emit(io, o.json, r as unknown as Record<string, unknown>, () => show(r));
        },
      ),
    );

  const act = inc.command('action').description('corrective and preventive actions');
  act
    .command('add <id>')
    .addOption(new Option('--kind <kind>').choices(['corrective', 'preventive']).makeOptionMandatory())
    .requiredOption('--description <text>')
    .option('--due <time>', 'due date (ISO 8601)', time('--due'))
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, o: { kind: string; description: string; due?: string; json?: boolean }) => {
        const r = await api().json<{ id: string; state: string }>(
          'POST',
          `/incidents/${encodeURIComponent(id)}/actions`,
          { kind: o.kind, description: o.description, ...(o.due ? { dueAt: o.due } : {}) },
        );
        emit(io, o.json, r, r.id);
      }),
    );
  act
    .command('close <id> <actionId>')
    .option('--outcome <text>')
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, actionId: string, o: { outcome?: string; json?: boolean }) => {
        const r = await api().json<{ id: string; state: string }>(
          'POST',
          `/incidents/${encodeURIComponent(id)}/actions/${encodeURIComponent(actionId)}/close`,
          o.outcome ? { outcome: o.outcome } : {},
        );
        emit(io, o.json, r, `${r.id} ${r.state}`);
      }),
    );

  inc
    .command('report <id>')
    .description('the report (GDPR art. 33 content, DORA fields) as JSON or CSV')
    .addOption(new Option('--format <format>').choices(['json', 'csv']).default('json'))
    .requiredOption('-o, --out <file>', 'where to write it')
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, o: { format: string; out: string; json?: boolean }) => {
        const res = await api().raw('GET', `/incidents/${encodeURIComponent(id)}/report?format=${o.format}`);
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        const body = Buffer.concat(chunks);
        if ((res.statusCode ?? 0) >= 400) {
          let err: { code?: string; message?: string } | undefined;
          try {
            err = (JSON.parse(body.toString('utf8')) as { error?: { code?: string; message?: string } }).error;
          } catch {
            /* not JSON */
          }
          throw new AppError(
            err?.code ?? `HTTP_${res.statusCode}`,
            err?.message ?? `the appliance answered ${res.statusCode}`,
            { exitCode: 1 },
          );
        }
        fs.writeFileSync(o.out, body, { mode: 0o600 });
        emit(io, o.json, { file: o.out, bytes: body.length, format: o.format }, `${o.out} (${body.length} bytes)`);
      }),
    );
}
