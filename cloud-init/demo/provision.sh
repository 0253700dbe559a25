#!/bin/sh
# Provisions the demo stack once, at image build time (run by user-data from the seed
# mounted at $1). Installs the guest-side scripts, prepares PostgreSQL with the public
# placeholder secrets, starts everything, checks the API answers through the database,
# and seals the image: cloud-init never runs again, so the published image boots fast.
set -eu
seed=$1
console=/dev/ttyS0

step() { echo "EMU_PROVISION_STEP $*" > "$console"; }
fail() { echo "EMU_PROVISION_FAILED $*" > "$console"; exit 1; }
trap 'fail "provision.sh stopped at: ${current:-start}"' EXIT

current="installing guest scripts"; step "$current"
install -m 0755 "$seed/emu-rotate" /usr/local/bin/emu-rotate
install -m 0755 "$seed/emu-runtime-config" /usr/local/bin/emu-runtime-config
install -m 0755 "$seed/emu-wait-ready" /usr/local/bin/emu-wait-ready
install -d -m 0755 /usr/local/lib/emu
install -m 0644 "$seed/emu-api.py" /usr/local/lib/emu/emu-api.py
install -m 0644 "$seed/emu-api.service" "$seed/emu-runtime-config.service" /etc/systemd/system/

current="creating the API user and placeholder secrets"; step "$current"
id emu-api >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin emu-api
# setgid: a file emu-rotate writes here gets the API's group without a chgrp; group-
# writable: the API renames the secrets.env.new emu-rotate writes into place.
install -d -m 2770 -g emu-api /etc/emu
# Public placeholders, documented in cloud-init/README.md: emu replaces both at every start.
umask 027
printf 'API_SECRET=%s\nDB_PASSWORD=%s\n' placeholder-api-secret placeholder-db-password \
  > /etc/emu/secrets.env
chgrp emu-api /etc/emu/secrets.env
umask 022

current="configuring PostgreSQL"; step "$current"
conf_dir=""
for d in /etc/postgresql/*/main; do [ -d "$d" ] && { conf_dir=$d; break; }; done
[ -n "$conf_dir" ] || fail "no PostgreSQL cluster in /etc/postgresql"
cat > "$conf_dir/conf.d/emu.conf" <<'CONF'
# emu demo: reachable through the host's forwarded port (127.0.0.1 on the host).
listen_addresses = '*'
password_encryption = 'scram-sha-256'
CONF
# Only the app role may log in over TCP, and only with its password.
cat >> "$conf_dir/pg_hba.conf" <<'HBA'
host app app 0.0.0.0/0 scram-sha-256
HBA
systemctl restart postgresql
runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE ROLE app LOGIN PASSWORD 'placeholder-db-password';
CREATE DATABASE app OWNER app;
\connect app
SET ROLE app;
CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now());
SQL

current="starting the API"; step "$current"
systemctl daemon-reload
systemctl enable emu-runtime-config.service emu-api.service
systemctl start emu-runtime-config.service emu-api.service

current="checking the API answers through the database"; step "$current"
/usr/local/bin/emu-wait-ready 120

current="sealing the image"; step "$current"
# A resumed stack's clock jumps forward by the time since its capture, so calendar timers
# that fell due in between would fire at once, inside the user's session (apt-get update
# and upgrade under emulation take minutes of CPU). A stack's packages change with its
# image, never in place.
systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
# (Not `cloud-init clean`: cloud-init is still running this script and writes its state.)
touch /etc/cloud/cloud-init.disabled
sync
trap - EXIT
echo EMU_PROVISION_DONE > "$console"
