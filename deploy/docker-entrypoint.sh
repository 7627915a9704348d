#!/bin/sh
# tss-entrypoint: start one component with its config file.
#   signer       python -m signer.node  --config ${TSS_CONFIG:-/etc/tss/node.json}
#   coordinator  python -m coordinator  --config ${TSS_CONFIG:-/etc/tss/coordinator.json}
#   anything else is executed as given (e.g. `tssctl ...`, `sh`).
set -eu
case "${1:-signer}" in
  signer)
    exec python -m signer.node --config "${TSS_CONFIG:-/etc/tss/node.json}"
    ;;
  coordinator)
    exec python -m coordinator --config "${TSS_CONFIG:-/etc/tss/coordinator.json}"
    ;;
  *)
    exec "$@"
    ;;
esac
