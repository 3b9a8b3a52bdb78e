#!/bin/sh
# Started by `nuncio hot-restarter` (config/systemd/nuncio.service) with RESTART_EPOCH set: one epoch of
# the proxy. The hot-restart socket lives in the unit's RuntimeDirectory.
exec /usr/local/bin/nuncio -c "${NUNCIO_BOOTSTRAP:-/etc/nuncio/bootstrap.yaml}" \
  --restart-epoch "${RESTART_EPOCH:?RESTART_EPOCH is set by nuncio hot-restarter}" \
  --socket-path "${RUNTIME_DIRECTORY:-/run/nuncio}/hot_restart" \
  --service-node "$(hostname)" \
  --drain-time-s "${NUNCIO_DRAIN_TIME_S:-30}" \
  --parent-shutdown-time-s "${NUNCIO_PARENT_SHUTDOWN_TIME_S:-60}" \
  --log-path "${LOGS_DIRECTORY:-/var/log/nuncio}/nuncio.log"
