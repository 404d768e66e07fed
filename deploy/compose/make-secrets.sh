#!/usr/bin/env bash
# Writes the secrets docker-compose.yml mounts into deploy/compose/secrets/
# (or the directory given as $1), each from openssl rand:
#
#   token-keys              "<kid> <secret>": the token key all nodes sign and verify with
#   admin-tokens            "operator admin <token>" and "viewer prometheus <token>"
#   prometheus.token        the viewer token alone, for Prometheus's scrape
#   grafana-admin-password  Grafana's admin password
#
# Existing files are kept (run it again after deleting one to replace it), so
# running it twice does not log everybody out. The directory is 0700; the
# files are 0644 because they are bind-mounted into containers that run as
# other users (floodgate, nobody, grafana), and a compose secret from a file
# keeps the file's mode and owner.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/secrets}"
mkdir -p "$dir"
chmod 0700 "$dir"

b64url() { openssl rand "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }

write() {  # write NAME CONTENT
  local f="$dir/$1"
  if [ -e "$f" ]; then
    echo "make-secrets: $f exists, kept"
    return
  fi
  ( umask 022; printf '%s\n' "$2" > "$f.tmp" )
  chmod 0644 "$f.tmp"
  mv "$f.tmp" "$f"
  echo "make-secrets: wrote $f"
}

write token-keys "$(openssl rand -hex 4) $(b64url 32)"
if [ ! -e "$dir/admin-tokens" ] || [ ! -e "$dir/prometheus.token" ]; then
  rm -f "$dir/admin-tokens" "$dir/prometheus.token"
  viewer="$(b64url 24)"
  write admin-tokens "$(printf 'operator admin %s\nviewer prometheus %s' "$(b64url 24)" "$viewer")"
  write prometheus.token "$viewer"
fi
write grafana-admin-password "$(b64url 18)"
echo "make-secrets: the operator token (dashboard, floodgatectl) is on the 'operator admin' line of $dir/admin-tokens"
