import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { DASHBOARD_DIR } from '../src/http/routes/dashboard.js';

// `npm run build:dashboard`: the dashboard's TypeScript (dashboard/, with the client from
// presently-client/socket, from the package's sources) bundled into one browser script, next to its page and style, in dist/dashboard/.

const SOURCE = fileURLToPath(new URL('../dashboard/', import.meta.url));

export async function buildDashboard(outDir = DASHBOARD_DIR): Promise<void> {
  const result = await build({
    entryPoints: [path.join(SOURCE, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // The client package's sources, as typecheck reads them: no need to build it first.
    conditions: ['presently-source'],
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
    outfile: path.join(outDir, 'app.js'),
  });
  const script = result.outputFiles.find((file) => file.path.endsWith('app.js'));
  if (!script) throw new Error('esbuild wrote no app.js');
  await fs.mkdir(outDir, { recursive: true });
  await replace(path.join(outDir, 'app.js'), script.contents);
  await replace(path.join(outDir, 'style.css'), await fs.readFile(path.join(SOURCE, 'style.css')));
  // The page last, so that it never names an asset not yet there.
  await replace(
    path.join(outDir, 'index.html'),
    await fs.readFile(path.join(SOURCE, 'index.html')),
  );
}

/** Written aside, then renamed: a service or a test reading meanwhile never sees half a file. */
async function replace(file: string, content: Uint8Array): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(temp, content);
  await fs.rename(temp, file);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  await buildDashboard();
  const ms = Math.round(performance.now() - started);
  process.stdout.write(`dashboard built in ${DASHBOARD_DIR} (${ms} ms)\n`);
}
