#!/bin/sh
# keepalived notify script: hotsync's role follows VRRP's.
#   hotsync-notify.sh active|standby
# Needs `hrp role-control external` in the node file (else `hrp role` is
# refused: hotsync's own election decides). On `active`, hotsync commits the
# replicated sessions to the kernel before it answers (conntrack adapter).
set -u
role=${1:?usage: hotsync-notify.sh active|standby}
case $role in active|standby) ;; *) echo "unknown role $role" >&2; exit 2 ;; esac
sock=${HOTSYNC_ADMIN:-/run/hotsync/admin.sock}
hotsync=${HOTSYNC_BIN:-/usr/local/bin/hotsync}

# The node may be starting (keepalived and hotsync start together): retry.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if out=$("$hotsync" cli --admin "$sock" "hrp role $role" 2>&1); then
        logger -t hotsync-notify "role $role: $out"
        exit 0
    fi
    sleep 1
done
logger -t hotsync-notify -p daemon.err "role $role NOT applied after $attempt attempts: $out"
exit 1
