import fs from 'node:fs/promises';

// What /proc says about a process (Linux only): CPU time, and its open descriptors, told apart.

/** CPU time a process used so far, ms (utime + stime of /proc/<pid>/stat, at 100 ticks/s). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export async function openFds(pid: number): Promise<number> {
  return (await fs.readdir(`/proc/${pid}/fd`)).length;
}

export interface Descriptors {
  total: number;
  /** TCP connections accepted on the service's port (sockets and HTTP keep-alive). */
  accepted: number;
  /** Of those, closed by the peer but not yet by the service (CLOSE_WAIT): none should linger. */
  closeWait: number;
  /** Everything else: the pool's and the listener's connections, the listening socket, files. */
  other: number;
}

const TCP_CLOSE_WAIT = '08';

/** The service's descriptors, its accepted connections on `port` told apart from the rest. */
export async function descriptors(pid: number, port: number): Promise<Descriptors> {
  const dir = `/proc/${pid}/fd`;
  const names = await fs.readdir(dir);
  const targets = await Promise.all(
    names.map((name) => fs.readlink(`${dir}/${name}`).catch(() => '')),
  );
  const sockets = new Set<string>();
  for (const target of targets) {
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) sockets.add(inode);
  }
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  // A table read while it changes can show a connection twice: each inode counts once.
  const accepted = new Set<string>();
  const closeWait = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await fs.readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, remote, state, inode] = [fields[1], fields[2], fields[3], fields[9]];
      if (!local?.endsWith(hexPort) || remote?.endsWith(':0000') || !inode) continue;
      if (!sockets.has(inode)) continue; // the client's end, or another process's
      accepted.add(inode);
      if (state === TCP_CLOSE_WAIT) closeWait.add(inode);
    }
  }
  return {
    total: names.length,
    accepted: accepted.size,
    closeWait: closeWait.size,
    other: names.length - accepted.size,
  };
}
