import type { BenchResults, Target } from './report.js';

// The issue's targets, judged on one run's results.

export function judge(r: BenchResults, mainUsers: number): Target[] {
  const targets: Target[] = [];
  const add = (name: string, pass: boolean, measured: string) =>
    targets.push({ name, pass, measured });
  const main = r.scale.find((p) => p.users === mainUsers)?.http;
  const ceiling = r.ceilings.http;
  if (main && ceiling) {
    const ratio = main.rps / ceiling.rps;
    add(
      'HTTP ping >= 0.6 x HTTP ceiling',
      ratio >= 0.6,
      `${fmt(main.rps)}/s = ${ratio.toFixed(2)} x ${fmt(ceiling.rps)}/s`,
    );
    add(
      `HTTP ping p99 < 25 ms at ${main.connections} connections`,
      main.latencyMs.p99 < 25,
      `p99 ${main.latencyMs.p99} ms`,
    );
  }
  const small = r.scale[0];
  const large = r.scale.at(-1);
  if (small && large && large !== small) {
    const ratio = large.http.rps / small.http.rps;
    add(
      `ping throughput with ${fmt(large.users)} users >= 0.8 x with ${fmt(small.users)}`,
      ratio >= 0.8,
      `${fmt(large.http.rps)}/s vs ${fmt(small.http.rps)}/s = ${ratio.toFixed(2)}`,
    );
  }
  if (r.fanout) {
    const f = r.fanout;
    add(
      `fan-out p99 < 100 ms to ${fmt(f.sockets)} sockets`,
      f.deliveryMs.p99 < 100 && f.missing === 0,
      `p99 ${f.deliveryMs.p99} ms, ${f.missing} missing`,
    );
  }
  if (r.memory) {
    add(
      '<= 16 KiB resident per idle socket',
      r.memory.kibPerSocket <= 16,
      `${r.memory.kibPerSocket} KiB (${fmt(r.memory.sockets)} sockets)`,
    );
  }
  const sio = r.socketio;
  if (sio?.memory) {
    add(
      '<= 24 KiB resident per idle Socket.IO socket',
      sio.memory.kibPerSocket <= 24,
      `${sio.memory.kibPerSocket} KiB (${fmt(sio.memory.sockets)} sockets)${r.memory ? `; /ws ${r.memory.kibPerSocket} KiB` : ''}`,
    );
  }
  if (sio?.fanout) {
    const f = sio.fanout;
    add(
      `Socket.IO fan-out p99 < 100 ms to ${fmt(f.sockets)} sockets`,
      f.deliveryMs.p99 < 100 && f.missing === 0,
      `p99 ${f.deliveryMs.p99} ms, ${f.missing} missing${r.fanout ? `; /ws p99 ${r.fanout.deliveryMs.p99} ms` : ''}`,
    );
  }
  for (const p of sio?.pings ?? []) {
    // No throughput target of its own: every ping stored, compared with /ws at the same table.
    const errors = Object.values(p.errors).reduce((a, b) => a + b, 0);
    const ws = r.socket?.users === p.users ? r.socket : undefined;
    add(
      `Socket.IO ping${p.mode === 'ack' ? ' with acknowledgements' : ''}: no error, no socket closed`,
      errors === 0 && p.closed === 0,
      `${errors} errors, ${p.closed} closed; ${fmt(p.framesPerSecond)}/s${ws ? ` = ${(p.framesPerSecond / ws.framesPerSecond).toFixed(2)} x /ws ${fmt(ws.framesPerSecond)}/s` : ''}`,
    );
  }
  const sameTable = r.scale.find((p) => p.users === r.socket?.users)?.http;
  if (r.socket && sameTable) {
    const errors = Object.values(r.socket.errors).reduce((a, b) => a + b, 0);
    add(
      `socket ping > HTTP ping (both ${fmt(r.socket.users)} users)`,
      r.socket.framesPerSecond > sameTable.rps && errors === 0,
      `${fmt(r.socket.framesPerSecond)}/s vs ${fmt(sameTable.rps)}/s, ${errors} error frames`,
    );
  }
  if (r.list) {
    const growthMiB = r.list.rssGrowthKiB / 1024;
    add(
      `whole list of ${fmt(r.list.users)} users: service RSS growth < 50 MiB`,
      growthMiB < 50,
      `+${growthMiB.toFixed(1)} MiB, ${(r.list.lastByteMs / 1000).toFixed(1)} s to the last byte`,
    );
  }
  if (r.watchFanout) {
    const w = r.watchFanout;
    const closed = Object.values(w.closed).reduce((a, b) => a + b, 0);
    add(
      `watch-list fan-out p99 < 100 ms (${fmt(w.sockets)} sockets x ${w.perSocket} users, ${fmt(w.users)} users, ${w.changesPerSecond} changes/s)`,
      w.deliveryMs.p99 < 100 && w.missing === 0 && closed === 0,
      `p99 ${w.deliveryMs.p99} ms, ${fmt(w.missing)} missing, ${closed} closed`,
    );
    add(
      'no socket hears a change of a user it does not follow',
      w.foreign === 0 && w.unexpected === 0 && w.wrongStatus === 0,
      `${w.foreign} not followed, ${w.unexpected} unexpected, ${w.wrongStatus} wrong status, over ${fmt(w.frames.change)} changes received`,
    );
  }
  if (r.everyone) {
    const e = r.everyone;
    const closed = Object.values(e.closed).reduce((a, b) => a + b, 0);
    add(
      `no socket closed (${e.sockets} sockets following everyone, ${fmt(e.users)} users, a change every ${e.periodMs} ms)`,
      closed === 0,
      `${closed} closed ${JSON.stringify(e.closed)}`,
    );
    add(
      "every socket's last online-users-list is the final state",
      e.finalListSockets === e.sockets,
      `${e.finalListSockets} of ${e.sockets}${e.finalListAfterS === null ? '' : `, ${e.finalListAfterS} s after the changes`}`,
    );
  }
  if (r.bulk) {
    const b = r.bulk;
    const batch = r.ceilings.pgbench?.batch.best;
    if (batch) {
      const ratio = b.bulk.pingsPerSecond / batch.rowsPerSecond;
      add(
        'bulk ping >= 0.5 x pgbench 100-row batches',
        ratio >= 0.5,
        `${fmt(b.bulk.pingsPerSecond)}/s = ${ratio.toFixed(2)} x ${fmt(batch.rowsPerSecond)} rows/s`,
      );
    }
    const ratio = b.bulk.pingsPerSecond / b.single.rps;
    add(
      'bulk ping >= 10 x single pings',
      ratio >= 10,
      `${fmt(b.bulk.pingsPerSecond)}/s = ${ratio.toFixed(1)} x ${fmt(b.single.rps)}/s`,
    );
    const cores = b.workers2.single.rps / b.single.rps;
    add(
      'WORKERS=2 single pings > WORKERS=1',
      cores > 1,
      `${fmt(b.workers2.single.rps)}/s = ${cores.toFixed(2)} x ${fmt(b.single.rps)}/s (bulk: ${fmt(b.workers2.bulk.pingsPerSecond)} vs ${fmt(b.bulk.pingsPerSecond)} pings/s)`,
    );
  }
  const sessions = r.sessions ?? [];
  const first = sessions[0];
  const last = sessions.at(-1);
  if (first && last && last !== first) {
    const ratio = last.heartbeats.rps / first.heartbeats.rps;
    add(
      `named-session heartbeats with ${fmt(last.users)} users x 2 sessions >= 0.8 x with ${fmt(first.users)}`,
      ratio >= 0.8,
      `${fmt(last.heartbeats.rps)}/s vs ${fmt(first.heartbeats.rps)}/s = ${ratio.toFixed(2)}; sweep ${last.sweeps.idleMs} ms a run (${last.sweeps.dueMs} ms with 1% due)`,
    );
  }
  return targets;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');
