import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';

/** The file's text, or undefined when there is no such file. */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
}

/**
 * Creates a private file holding `content` unless it exists, and says whether this call
 * created it. Written aside and linked into place: a reader never sees it half-written, and
 * when several processes race, the first link wins and the others keep what it wrote.
 */
export async function createFileOnce(file: string, content: string): Promise<boolean> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(temp, content, { mode: 0o600 });
  try {
    await fs.link(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    await fs.rm(temp, { force: true });
  }
}
