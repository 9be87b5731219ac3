#!/bin/sh
# Makes the dev overlay's credentials in this folder, replacing the ones
# committed here (which anyone who reads the repository can use: run this
# before trying the dev overlay anywhere shared):
#   signing.key    the coordinators' signing key  -> Secret gaia-auth-signing-key
#   public.pem     its public key                 -> Secret gaia-auth-public-keys
#   admin.token    an admin credential            -> Secret gaia-coordinator-token (and yours)
#   service.token  a service credential           -> Secret gaia-service-token
# Both credentials are signed here, offline, for the longest lifetime allowed
# (2 years); `go test ./deploy/k8s/` fails 30 days before they expire.
#   deploy/k8s/overlays/dev/auth/generate.sh            (gaia on PATH, or GAIA=./bin/gaia)
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
gaia=${GAIA:-gaia}
rm -f "$dir/signing.key" "$dir/public.pem" "$dir/admin.token" "$dir/service.token"
"$gaia" auth keys "$dir" >/dev/null
"$gaia" auth issue --signing-key "$dir/signing.key" --role admin --name k8s-dev-admin \
  --ttl 17520h --token-only --out "$dir/admin.token" >/dev/null
"$gaia" auth issue --signing-key "$dir/signing.key" --role service --service k8s-dev --name k8s-dev-services \
  --ttl 17520h --token-only --out "$dir/service.token" >/dev/null
echo "dev credentials made in $dir; apply with: kubectl apply -k $(dirname "$dir")"
