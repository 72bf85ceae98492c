import { IncomingMessage } from 'node:http';
import { finished, type Readable, type Writable } from 'node:stream';

/**
 * `src.pipe(dst)` with `stream.pipeline`'s handling of failures, for two streams: an error or an
 * early close of either destroys both with that error, and `done` is called once both have
 * settled: with nothing when `dst` has taken everything, else with the first error.
 *
 * Why not `pipeline`: it makes an AbortController per call and aborts it when the streams end,
 * which builds an AbortError with its stack trace each time. A server moving hundreds of small
 * documents a second runs two or three pipelines per document, and that was 3 % of its event
 * loop (bench/RESULTS.md, design measurements).
 */
export function pump<W extends Writable>(src: Readable, dst: W, done: (err?: Error) => void): W {
  let error: Error | undefined;
  let pending = 2;
  // like pipeline, `done` waits for both streams to settle: after a failure, the other stream's
  // own clean-up (a file being closed) must not race what the caller does next (removing it)
  const settled = (err?: Error | null) => {
    if (err && !error) {
      error = err;
      destroy(src, err);
      destroy(dst, err);
    }
    if (--pending === 0) done(error);
  };
  // the listeners stay: an error either stream emits later is not left unhandled
  finished(src, { writable: false }, settled);
  finished(dst, { readable: false }, settled);
  src.pipe(dst);
  return dst;
}

/**
 * A server's request is destroyed without its socket, as `pipeline` does: the server still
 * answers (a 413 for a body over quota), where destroying the socket would reset the connection.
 */
function destroy(s: Readable | Writable, err: Error): void {
  if (s.destroyed) return;
  if (s instanceof IncomingMessage && (s as { req?: unknown }).req === undefined)
    (s as unknown as { socket: null }).socket = null;
  s.destroy(err);
}

/** `pump` as a promise. */
export function pumped(src: Readable, dst: Writable): Promise<void> {
  return new Promise((resolve, reject) => pump(src, dst, (err) => (err ? reject(err) : resolve())));
}
