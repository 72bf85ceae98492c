// Builds the web console (src/console/app) into dist/console: one fingerprinted JS bundle and one
// stylesheet under assets/, and an index.html that references them. No inline script or style
// (the Content-Security-Policy), nothing loaded from elsewhere. Run by `npm run build` after the type check.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src/console/app');
const out = path.join(root, 'dist/console');
const tmp = `${out}.tmp-${process.pid}`;

fs.rmSync(tmp, { recursive: true, force: true });
const result = await build({
  entryPoints: [path.join(src, 'main.tsx')],
  bundle: true,
  format: 'esm',
  splitting: false,
  // the browsers the core's gate lets through (src/http/browsers.ts)
  target: ['chrome100', 'edge100', 'firefox115', 'safari15.4'],
  minify: true,
  legalComments: 'none',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: path.join(tmp, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = Object.keys(result.metafile.outputs).map((p) =>
  path.relative(path.join(tmp, 'assets'), path.resolve(root, p)),
);
const js = outputs.find((p) => p.endsWith('.js'));
const css = outputs.find((p) => p.endsWith('.css'));
if (!js || !css) throw new Error(`console build: expected one .js and one .css, got ${outputs.join(', ')}`);
fs.copyFileSync(path.join(src, 'favicon.svg'), path.join(tmp, 'assets', 'favicon.svg'));

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Coffre</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/${css}">
<script type="module" src="/assets/${js}"></script>
</head>
<body>
<div id="app"><noscript><p class="noscript">The Coffre console needs JavaScript. Please enable it for this address, or use a current browser.</p></noscript></div>
</body>
</html>
`;
fs.writeFileSync(path.join(tmp, 'index.html'), html);
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.renameSync(tmp, out);
const size = (f) => fs.statSync(path.join(out, 'assets', f)).size;
console.error(
  `console: dist/console/assets/${js} (${Math.round(size(js) / 1024)} KiB), ${css} (${Math.round(size(css) / 1024)} KiB)`,
);
