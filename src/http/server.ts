import type { TLSSocket } from 'node:tls';
import type { App } from './build.js';
import type { Logger } from '../shared/logger.js';

/**
 * Attaches the transport-level behaviours to a built app: renegotiation off, TLS handshake
 * failures logged. Then listens.
 */
export async function listen(app: App, host: string, port: number, log: Logger): Promise<string> {
  const server = app.server;
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.disableRenegotiation();
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    log.warn(
      {
        event: 'tls.handshake_failed',
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        code: err.code,
        reason: err.message,
      },
      'TLS handshake failed',
    );
  });
  return app.listen({ host, port });
}
