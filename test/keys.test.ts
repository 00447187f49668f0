import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveKeys } from '../src/keys.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-keys-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

const unset = { accessKey: undefined, accessKeySystem: undefined };

describe('resolveKeys', () => {
  it('generates both keys once, keeps them private in DATA_DIR, and reuses them', async () => {
    const first = await resolveKeys(dir, unset);
    expect(first.keys.access).toMatch(/^[\w-]{43}$/);
    expect(first.keys.system).toMatch(/^[\w-]{43}$/);
    expect(first.keys.access).not.toBe(first.keys.system);
    expect(first.generated.map((g) => g.name)).toEqual(['ACCESS_KEY', 'ACCESS_KEY_SYSTEM']);
    const stat = await fs.stat(path.join(dir, 'keys.json'));
    expect(stat.mode & 0o777).toBe(0o600);
    expect((await resolveKeys(dir, unset)).keys).toEqual(first.keys);
  });

  it('lets the environment win, and reports only the keys it did not set', async () => {
    const resolved = await resolveKeys(dir, { accessKey: 'mine', accessKeySystem: undefined });
    expect(resolved.keys.access).toBe('mine');
    expect(resolved.generated.map((g) => g.name)).toEqual(['ACCESS_KEY_SYSTEM']);
    const both = await resolveKeys(path.join(dir, 'elsewhere'), {
      accessKey: 'a',
      accessKeySystem: 'b',
    });
    expect(both).toMatchObject({ keys: { access: 'a', system: 'b' }, generated: [] });
    await expect(fs.access(path.join(dir, 'elsewhere'))).rejects.toThrow();
  });

  it('takes the system key alone from the environment, the access key from the file', async () => {
    const stored = await resolveKeys(dir, unset);
    const resolved = await resolveKeys(dir, { accessKey: undefined, accessKeySystem: 'sys' });
    expect(resolved.keys).toEqual({ access: stored.keys.access, system: 'sys' });
    expect(resolved.generated).toEqual([{ name: 'ACCESS_KEY', value: stored.keys.access }]);
    expect(resolved.file).toBe(path.join(dir, 'keys.json'));
  });

  it('creates DATA_DIR when it does not exist yet', async () => {
    const nested = path.join(dir, 'a', 'b');
    const resolved = await resolveKeys(nested, unset);
    const file = JSON.parse(await fs.readFile(path.join(nested, 'keys.json'), 'utf8'));
    expect(file).toEqual({
      ACCESS_KEY: resolved.keys.access,
      ACCESS_KEY_SYSTEM: resolved.keys.system,
    });
  });

  it('agrees with itself when several processes start at once', async () => {
    const all = await Promise.all([1, 2, 3, 4].map(() => resolveKeys(dir, unset)));
    expect(new Set(all.map((r) => JSON.stringify(r.keys))).size).toBe(1);
    expect((await fs.readdir(dir)).sort()).toEqual(['keys.json']);
  });

  it('refuses a damaged key file rather than silently replacing keys, saying what is wrong', async () => {
    const file = path.join(dir, 'keys.json');
    await fs.writeFile(file, '{"ACCESS_KEY": ');
    // An Error with this message (toThrow alone would also pass for a rejection with undefined).
    await expect(resolveKeys(dir, unset)).rejects.toEqual(
      new Error(
        `${file} is not a valid key file (it is not JSON); fix it or delete it to generate new keys`,
      ),
    );
    await fs.writeFile(file, JSON.stringify({ ACCESS_KEY: '', ACCESS_KEY_SYSTEM: 'b' }));
    await expect(resolveKeys(dir, unset)).rejects.toEqual(
      new Error(
        `${file} is not a valid key file (ACCESS_KEY and ACCESS_KEY_SYSTEM must be non-empty strings); fix it or delete it to generate new keys`,
      ),
    );
  });

  it('writes nothing in DATA_DIR once the key file exists (it may be read-only)', async () => {
    const first = await resolveKeys(dir, unset);
    // Adding or removing a file (even a temporary one) would move the directory's mtime.
    const past = new Date('2001-02-03T04:05:06Z');
    await fs.utimes(dir, past, past);
    await fs.utimes(path.join(dir, 'keys.json'), past, past);
    expect((await resolveKeys(dir, unset)).keys).toEqual(first.keys);
    expect((await fs.stat(dir)).mtime).toEqual(past);
    expect((await fs.stat(path.join(dir, 'keys.json'))).mtime).toEqual(past);
  });
});
