import { onCleanup, rssKiB, sleep } from './process.js';
import { ACCESS_KEY } from './service.js';
import { round } from './stats.js';

// The whole list, `GET /users/list/all` without a limit, read once by one client as fast as
// it reads: the time to its last byte, and how much the service's resident memory grows
// meanwhile (VmRSS sampled from /proc every 20 ms while the answer streams). The list is
// streamed from PostgreSQL in chunks, so the growth should not depend on the number of users.

export interface ListReadResult {
  users: number;
  megabytes: number;
  firstByteMs: number;
  lastByteMs: number;
  rssBeforeKiB: number;
  rssPeakKiB: number;
  rssGrowthKiB: number;
  /** The peak over a second read right after the first. */
  rssPeakSecondReadKiB: number;
  rssSamples: number;
}

const SAMPLE_MS = 20;
const OPEN_BRACE = 0x7b;

export async function runListRead(options: {
  url: string;
  servicePid: number;
  users: number;
}): Promise<ListReadResult> {
  const headers = { authorization: `Bearer ${ACCESS_KEY}` };
  // A page first, so that the route's code is loaded and compiled before the measured read.
  const warm = await fetch(`${options.url}/users/list/all?limit=10`, { headers });
  if (!warm.ok) throw new Error(`a page of the list answered ${warm.status}`);
  await warm.arrayBuffer();
  await sleep(500);
  const rssBeforeKiB = await rssKiB(options.servicePid);
  let rssPeakKiB = rssBeforeKiB;
  let samples = 0;
  let reading = true;
  const sampler = (async () => {
    while (reading) {
      rssPeakKiB = Math.max(rssPeakKiB, await rssKiB(options.servicePid));
      samples += 1;
      await sleep(SAMPLE_MS);
    }
  })();
  const stopSampling = onCleanup(async () => {
    reading = false;
    await sampler;
  });

  const first = await readWholeList(options.url, headers, options.users);
  const firstPeakKiB = rssPeakKiB;
  // A second read: were the first one's memory kept, or did it grow with each read, the peak
  // would climb; if it stays put, the growth is the heap sizing itself once for the traffic.
  await readWholeList(options.url, headers, options.users);
  await stopSampling();
  const { users, bytes, firstByteMs, lastByteMs } = first;
  return {
    users,
    megabytes: round(bytes / 1024 / 1024, 1),
    firstByteMs: round(firstByteMs, 1),
    lastByteMs: round(lastByteMs),
    rssBeforeKiB,
    rssPeakKiB: firstPeakKiB,
    rssGrowthKiB: firstPeakKiB - rssBeforeKiB,
    rssPeakSecondReadKiB: rssPeakKiB,
    rssSamples: samples,
  };
}

/** One read of the whole list, counted and checked as it streams in, kept nowhere. */
async function readWholeList(url: string, headers: Record<string, string>, expected: number) {
  const began = performance.now();
  let firstByteMs = 0;
  let bytes = 0;
  let objects = 0;
  let last = 0;
  const response = await fetch(`${url}/users/list/all`, { headers });
  if (!response.ok || !response.body) throw new Error(`the list answered ${response.status}`);
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    if (bytes === 0) firstByteMs = performance.now() - began;
    bytes += chunk.byteLength;
    // Ids are integers here: one `{` per user, and the envelope's.
    for (const byte of chunk) if (byte === OPEN_BRACE) objects += 1;
    last = chunk.at(-1) ?? last;
  }
  const lastByteMs = performance.now() - began;
  const users = objects - 1;
  if (users !== expected || last !== 0x7d) {
    throw new Error(`the list held ${users} users of ${expected}, or did not end`);
  }
  return { users, bytes, firstByteMs, lastByteMs };
}
