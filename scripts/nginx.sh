#!/usr/bin/env bash
# Installs nginx from Debian's packages when it is missing. The Elasticsearch TLS and
# authentication tests run it as a child process in front of the test node; nothing here starts
# a service. Prints the path of the nginx binary.
set -euo pipefail

find_nginx() {
  command -v nginx 2>/dev/null && return 0
  [[ -x /usr/sbin/nginx ]] && { echo /usr/sbin/nginx; return 0; }
  return 1
}

if find_nginx; then
  exit 0
fi
if ((EUID != 0)) || ! command -v apt-get >/dev/null 2>&1; then
  echo "nginx.sh: nginx is missing; install Debian's nginx-light (or nginx) package as root" >&2
  exit 1
fi
echo "nginx.sh: installing nginx-light" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# nginx-light is the smaller build; later Debian releases fold it into nginx.
if ! apt-get install -y -qq --no-install-recommends nginx-light >&2; then
  apt-get install -y -qq --no-install-recommends nginx >&2
fi
# The package's post-install may start the system service; the tests do not use it.
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
find_nginx
