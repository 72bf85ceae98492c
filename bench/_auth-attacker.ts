import https from 'node:https';

/**
 * One attacker process of `bench/auth.ts`: a real HTTPS client in its own process, speaking from
 * its own loopback addresses (127.0.x.y stand for other hosts), against `coffre serve`.
 * argv[2]: JSON {url, ca, addresses, mode, usernames?, paceMs?}
 * - `guess`: each address sends wrong passwords for `usernames` (in turn), one request in flight,
 *   as fast as the server answers; proofs of work asked for are not solved (a guess then costs
 *   the server no argon2 work: the attacker who solves them pays a second of CPU per guess);
 * - `flood`: each address sends requests with a bad bearer token, one every `paceMs`.
 * Prints `{"ready":true}` once its connections are open, stops when its stdin closes, then prints
 * `{"sent":N,"status":{"401":…,"429":…}}` and exits.
 */
interface Config {
  url: string;
  ca: string;
  addresses: string[];
  mode: 'guess' | 'flood';
  usernames?: string[];
  paceMs?: number;
}
const cfg = JSON.parse(process.argv[2]!) as Config;
const u = new URL(cfg.url);
let stop = false;
let sent = 0;
const status: Record<string, number> = {};

function send(agent: https.Agent, method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<number>((resolve) => {
    const req = https.request(
      { host: u.hostname, port: u.port, servername: 'localhost', ca: cfg.ca, agent, method, path, headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function run(address: string, k: number): Promise<void> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, localAddress: address });
  let i = 0;
  while (!stop) {
    let code: number;
    if (cfg.mode === 'guess') {
      const names = cfg.usernames!;
      const username = names[(k + i) % names.length]!.replace('{n}', `${address}-${i}`);
      code = await send(
        agent,
        'POST',
        '/api/v1/auth/login',
        { 'content-type': 'application/json' },
        JSON.stringify({ username, password: `Wrong-Guess-${address}-${i}` }),
      );
    } else {
      code = await send(agent, 'GET', '/api/v1/auth/me', { authorization: `Bearer cft_${'f'.repeat(40)}${k}x${i}` });
      await new Promise((r) => setTimeout(r, cfg.paceMs ?? 10));
    }
    i++;
    sent++;
    status[code] = (status[code] ?? 0) + 1;
  }
  agent.destroy();
}

process.stdin.resume();
process.stdin.on('end', () => (stop = true));
process.stdin.on('close', () => (stop = true));
const all = cfg.addresses.map((a, k) => run(a, k));
process.stdout.write('{"ready":true}\n');
await Promise.all(all);
process.stdout.write(JSON.stringify({ sent, status }) + '\n');
