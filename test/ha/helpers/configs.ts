// The configuration files of the failover cluster (cluster.ts), as an operator would write them:
// one etcd member, three Patroni nodes with synchronous replication, HAProxy in front. Kept
// apart so that docs/operations.md can point at one place.

/**
 * Patroni's timing, in seconds. The leader key lives `ttl` seconds unless refreshed; a node
 * checks every `loop_wait`. A dead leader is replaced within about ttl + loop_wait: Patroni's
 * failover time, the bound the test holds presently to (plus 10 s). 20 is the smallest ttl
 * Patroni accepts, and loop_wait + 2 * retry_timeout must stay within it.
 */
export const PATRONI_TIMING = { ttl: 20, loop_wait: 2, retry_timeout: 5 };
export const FAILOVER_SECONDS = PATRONI_TIMING.ttl + PATRONI_TIMING.loop_wait;

export const SUPERUSER = { username: 'postgres', password: 'ha-postgres' };
const REPLICATION = { username: 'replicator', password: 'ha-replicator' };

export interface NodePorts {
  name: string;
  pg: number;
  rest: number;
}

/** One Patroni node's YAML (JSON is YAML too, and needs no YAML library). */
export function patroniConfig(node: NodePorts, dir: string, etcdPort: number): string {
  const config = {
    scope: 'presently',
    name: node.name,
    log: { level: 'INFO' },
    restapi: {
      listen: `127.0.0.1:${node.rest}`,
      connect_address: `127.0.0.1:${node.rest}`,
    },
    etcd3: { hosts: [`127.0.0.1:${etcdPort}`] },
    bootstrap: {
      dcs: {
        ...PATRONI_TIMING,
        maximum_lag_on_failover: 1_048_576,
        // A commit is acknowledged only once a standby has it too, and only that standby may be
        // promoted: no acknowledged ping is lost to a failover.
        synchronous_mode: true,
        postgresql: {
          use_pg_rewind: true,
          parameters: {
            wal_level: 'replica',
            hot_standby: 'on',
            max_wal_senders: 10,
            max_replication_slots: 10,
            wal_log_hints: 'on',
            shared_buffers: '32MB',
            max_connections: 100,
          },
        },
      },
      initdb: [{ encoding: 'UTF8' }, 'no-locale'],
      pg_hba: [
        `host replication ${REPLICATION.username} 127.0.0.1/32 scram-sha-256`,
        'host all all 127.0.0.1/32 scram-sha-256',
      ],
    },
    postgresql: {
      listen: `127.0.0.1:${node.pg}`,
      connect_address: `127.0.0.1:${node.pg}`,
      data_dir: `${dir}/${node.name}/data`,
      bin_dir: '/usr/lib/postgresql/15/bin',
      pgpass: `${dir}/${node.name}/pgpass`,
      authentication: { superuser: SUPERUSER, replication: REPLICATION, rewind: SUPERUSER },
      parameters: { unix_socket_directories: `${dir}/${node.name}` },
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
  return JSON.stringify(config, null, 2);
}

/**
 * HAProxy: a primary port that routes to the node whose Patroni answers 200 on `/primary`, a
 * replica port to those answering `/replica`. A node marked down has its sessions cut at once
 * (`on-marked-down shutdown-sessions`), so no connection stays on a demoted primary.
 */
export function haproxyConfig(nodes: NodePorts[], primary: number, replica: number): string {
  const servers = nodes
    .map((n) => `  server ${n.name} 127.0.0.1:${n.pg} maxconn 100 check port ${n.rest}`)
    .join('\n');
  const listen = (name: string, port: number, check: string) => `
listen ${name}
  bind 127.0.0.1:${port}
  option httpchk GET ${check}
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
${servers}
`;
  return `global
  maxconn 400

defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
${listen('primary', primary, '/primary')}${listen('replica', replica, '/replica')}`;
}
