import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { createFileOnce, readFileIfExists } from './files.js';

export interface Keys {
  /** Opens the user endpoints and the socket. */
  access: string;
  /** Opens the system endpoints, and everything the access key opens. */
  system: string;
}

export interface ResolvedKeys {
  keys: Keys;
  /** The keys taken from the generated file rather than the environment, to print at start-up. */
  generated: { name: 'ACCESS_KEY' | 'ACCESS_KEY_SYSTEM'; value: string }[];
  file: string;
}

const keyFileSchema = z.object({
  ACCESS_KEY: z.string().min(1),
  ACCESS_KEY_SYSTEM: z.string().min(1),
});
type KeyFile = z.infer<typeof keyFileSchema>;

const generateKey = () => randomBytes(32).toString('base64url');

/**
 * Keys set in the environment win; the others come from `<dataDir>/keys.json`, generated once
 * and kept so that clients keep working across restarts.
 */
export async function resolveKeys(
  dataDir: string,
  fromEnv: { accessKey: string | undefined; accessKeySystem: string | undefined },
): Promise<ResolvedKeys> {
  const file = path.join(dataDir, 'keys.json');
  const needsFile = fromEnv.accessKey === undefined || fromEnv.accessKeySystem === undefined;
  const stored = needsFile ? await readOrCreateKeyFile(file) : undefined;
  const access = fromEnv.accessKey ?? stored?.ACCESS_KEY;
  const system = fromEnv.accessKeySystem ?? stored?.ACCESS_KEY_SYSTEM;
  if (access === undefined || system === undefined) throw new Error('unreachable: keys missing');
  const generated: ResolvedKeys['generated'] = [];
  if (fromEnv.accessKey === undefined) generated.push({ name: 'ACCESS_KEY', value: access });
  if (fromEnv.accessKeySystem === undefined) {
    generated.push({ name: 'ACCESS_KEY_SYSTEM', value: system });
  }
  return { keys: { access, system }, generated, file };
}

async function readOrCreateKeyFile(file: string): Promise<KeyFile> {
  const existing = await readKeyFile(file);
  if (existing) return existing;
  await fs.mkdir(path.dirname(file), { recursive: true });
  const fresh: KeyFile = { ACCESS_KEY: generateKey(), ACCESS_KEY_SYSTEM: generateKey() };
  if (await createFileOnce(file, `${JSON.stringify(fresh, null, 2)}\n`)) return fresh;
  const winner = await readKeyFile(file);
  if (!winner) throw new Error(`${file} exists but could not be read`);
  return winner;
}

async function readKeyFile(file: string): Promise<KeyFile | undefined> {
  const text = await readFileIfExists(file);
  if (text === undefined) return undefined;
  const parsed = keyFileSchema.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new Error(`${file} is not a valid key file; fix it or delete it to generate new keys`);
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
