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
  const { accessKey, accessKeySystem } = fromEnv;
  // Both set: the file is neither read nor created.
  if (accessKey !== undefined && accessKeySystem !== undefined) {
    return { keys: { access: accessKey, system: accessKeySystem }, generated: [], file };
  }
  const stored = await readOrCreateKeyFile(file);
  const generated: ResolvedKeys['generated'] = [];
  if (accessKey === undefined) generated.push({ name: 'ACCESS_KEY', value: stored.ACCESS_KEY });
  if (accessKeySystem === undefined) {
    generated.push({ name: 'ACCESS_KEY_SYSTEM', value: stored.ACCESS_KEY_SYSTEM });
  }
  const keys = {
    access: accessKey ?? stored.ACCESS_KEY,
    system: accessKeySystem ?? stored.ACCESS_KEY_SYSTEM,
  };
  return { keys, generated, file };
}

async function readOrCreateKeyFile(file: string): Promise<KeyFile> {
  const text = await readFileIfExists(file);
  return text === undefined ? createKeyFile(file) : parseKeyFile(file, text);
}

/** New keys in `file`; or, when another process created it first, that process's keys. */
async function createKeyFile(file: string): Promise<KeyFile> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const fresh: KeyFile = { ACCESS_KEY: generateKey(), ACCESS_KEY_SYSTEM: generateKey() };
  if (await createFileOnce(file, `${JSON.stringify(fresh, null, 2)}\n`)) return fresh;
  return parseKeyFile(file, await fs.readFile(file, 'utf8'));
}

/** A damaged file is refused, saying what is wrong: never silently replaced by new keys. */
function parseKeyFile(file: string, text: string): KeyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalidKeyFile(file, 'it is not JSON');
  }
  const parsed = keyFileSchema.safeParse(json);
  if (!parsed.success) {
    throw invalidKeyFile(file, 'ACCESS_KEY and ACCESS_KEY_SYSTEM must be non-empty strings');
  }
  return parsed.data;
}

const invalidKeyFile = (file: string, why: string) =>
  new Error(`${file} is not a valid key file (${why}); fix it or delete it to generate new keys`);
