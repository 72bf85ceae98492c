// Container health check: GET https://127.0.0.1:8443/healthz, trusting the appliance's own certificate.
import fs from 'node:fs';
import https from 'node:https';
const ca = fs.readFileSync('/var/lib/coffre/data/tls/cert.pem');
https
  .get({ host: '127.0.0.1', port: 8443, path: '/healthz', ca, servername: 'localhost', timeout: 4000 }, (r) =>
    process.exit(r.statusCode === 200 ? 0 : 1),
  )
  .on('error', () => process.exit(1));
