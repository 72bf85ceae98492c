import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { Pattern } from '../support/pattern.js';
import { serveAppliance, type Served } from './served.js';

let s: Served;
let dir: string;
beforeAll(async () => {
  s = await serveAppliance();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-doc-cli-'));
});
afterAll(async () => {
  await s?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const coffre = (args: string[], env: Record<string, string> = s.clientEnv) => runCli(args, { env });

describe('coffre doc put / get / list', () => {
  it('puts a file (digest sent as a trailer), lists it, gets it back verified', async () => {
    const data = new Pattern(5).slice(0, 5 * 1024 * 1024 + 3);
    const file = path.join(dir, 'Board minutes.pdf');
    fs.writeFileSync(file, data);
    const put = await coffre(['doc', 'put', '--workspace', s.workspace, file, '--json']);
    expect(put.code, put.stderr).toBe(0);
    const r = JSON.parse(put.stdout) as { id: string; version: number; sha256: string; size: number; receipt: string };
    // the deposit receipt's id comes with the answer (`coffre doc receipt` fetches it)
    expect(r).toEqual({
      id: expect.any(String),
      version: 1,
      sha256: sha(data),
      size: data.length,
      receipt: expect.any(String),
    });

    const v2 = path.join(dir, 'v2.pdf');
    fs.writeFileSync(v2, 'second version');
    const put2 = await coffre(['doc', 'put', '--document', r.id, v2, '--json']);
    expect(put2.code, put2.stderr + put2.stdout).toBe(0);
    expect(JSON.parse(put2.stdout)).toMatchObject({ id: r.id, version: 2 });

    const list = await coffre(['doc', 'list', '--workspace', s.workspace, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).documents).toEqual([
      expect.objectContaining({ id: r.id, name: 'Board minutes.pdf', version: 2 }),
    ]);
    const human = await coffre(['doc', 'list', '--workspace', s.workspace]);
    expect(human.stdout).toContain('Board minutes.pdf');

    const out = path.join(dir, 'out.pdf');
    const get = await coffre(['doc', 'get', r.id, '--version', '1', '-o', out, '--json']);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ id: r.id, version: 1, sha256: sha(data), size: data.length });
    expect(fs.readFileSync(out).equals(data)).toBe(true);
    const latest = path.join(dir, 'latest.pdf');
    expect((await coffre(['doc', 'get', r.id, '-o', latest])).code).toBe(0);
    expect(fs.readFileSync(latest, 'utf8')).toBe('second version');
  });

  it('errors are one line with a stable code and the right exit code; nothing is written', async () => {
    const out = path.join(dir, 'nope.bin');
    const missing = await coffre(['doc', 'get', '00000000-0000-4000-8000-000000000000', '-o', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^DOCUMENT_NOT_FOUND: /);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(`${out}.partial`)).toBe(false);
    const noFile = await coffre(['doc', 'put', '--workspace', s.workspace, path.join(dir, 'absent')]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/^USAGE: /);
    const foreign = await coffre([
      'doc',
      'put',
      '--workspace',
      '00000000-0000-4000-8000-000000000000',
      path.join(dir, 'v2.pdf'),
    ]);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/^WORKSPACE_NOT_FOUND: /);
    const noToken = await coffre(['doc', 'list', '--workspace', s.workspace], {
      COFFRE_URL: s.url,
      COFFRE_CA: s.caFile,
    });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/^USAGE: COFFRE_TOKEN/);
  });
});
