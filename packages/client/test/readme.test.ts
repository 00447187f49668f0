import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { KEYS } from '../../../test/helpers/http.js';
import { useRealtime } from '../../../test/helpers/realtime.js';
import { call, type RunningService } from '../../../test/helpers/service.js';

// The package's README, run: its package is built (npm run build:client), then each ```js
// example is written as it is into the package's directory and run by Node against a real
// service, resolving `presently-client` as any user would (the built dist/). What each prints
// must be what the example's comments say: every `console.log(...); // <output>` line, in order.

const run = promisify(execFile);
const PACKAGE = fileURLToPath(new URL('../', import.meta.url));
const ROOT = path.join(PACKAGE, '../..');
const SCRATCH = path.join(PACKAGE, '.readme-examples');

const realtime = useRealtime();
let service: RunningService;
let examples: string[];

beforeAll(async () => {
  await run('npm', ['run', '--silent', 'build:client'], { cwd: ROOT });
  service = await realtime.start();
  expect((await call(service, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
  const readme = await fs.readFile(path.join(PACKAGE, 'README.md'), 'utf8');
  examples = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1] as string);
  await fs.rm(SCRATCH, { recursive: true, force: true });
  await fs.mkdir(SCRATCH);
  return () => fs.rm(SCRATCH, { recursive: true, force: true });
});

/** What an example says it prints: the comment after each console.log, in order. */
const promised = (code: string) =>
  code
    .split('\n')
    .flatMap((line) => /console\.log\(.*\); \/\/ (.*)$/.exec(line)?.[1] ?? [])
    .map((text) => text.trim());

describe('the README of presently-client', () => {
  it('has its two examples, REST and socket', () => {
    expect(examples).toHaveLength(2);
    expect(examples.flatMap(promised).length).toBeGreaterThanOrEqual(5);
  });

  it.each([0, 1])('runs example %i as written, printing what it says', async (index) => {
    const code = examples[index] as string;
    const file = path.join(SCRATCH, `example-${index}.mjs`);
    await fs.writeFile(file, code);
    const { stdout } = await run(process.execPath, [file], {
      cwd: SCRATCH,
      env: {
        ...process.env,
        PRESENTLY_URL: `http://127.0.0.1:${service.port}`,
        ACCESS_KEY: KEYS.access,
      },
      timeout: 20_000,
    });
    expect(stdout.trim().split('\n')).toEqual(promised(code));
  });
});
