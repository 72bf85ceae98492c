/**
 * Entry of the PKCS#11 worker thread. Compiled, it loads ./host.js. From the TypeScript sources
 * (tests), Node strips the types but does not map the `.js` import specifiers to `.ts` files: a
 * resolve hook does that for relative imports, then ./host.ts is loaded.
 */
import { registerHooks } from 'node:module';

const FROM_SOURCES = import.meta.url.endsWith('.ts');
const HOST_SOURCE: string = './host.ts';
if (FROM_SOURCES) {
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
        try {
          return next(`${specifier.slice(0, -3)}.ts`, context);
        } catch {
          /* a real .js file */
        }
      }
      return next(specifier, context);
    },
  });
}
// a literal specifier for the compiled layouts, so that the bundle carries the host with it
if (FROM_SOURCES) await import(HOST_SOURCE);
else await import('./host.js');
