#!/usr/bin/env bash
# Installs what the failover test (npm run test:ha) runs on, from Debian's packages, when it is
# missing: etcd (Patroni's store), Patroni, HAProxy and PostgreSQL 15. Needs root; apt-get update
# runs once, and only when something is missing.
set -euo pipefail
missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v patroni >/dev/null || missing+=(patroni)
command -v haproxy >/dev/null || missing+=(haproxy)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  # Debian's packages start services of their own when installed; none is wanted here (the test
  # starts its own on loopback), and in a container there is no init to start them anyway.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" python3-etcd >/dev/null
fi
