#!/usr/bin/env bash
# What the browser tests need beyond Python packages, installed when missing: Debian's Chromium
# (Playwright drives it through executable_path; Playwright's own browser download is not used),
# Noto fonts (the language picker names languages in their own scripts; without them the
# screenshots show empty boxes) and the pinned third-party browser code of package-lock.json
# (stock Uppy, axe-core).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-core >/dev/null 2>&1 || missing+=(fonts-noto-core)
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian's ${missing[*]} for the browser tests..."
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y -q "${missing[@]}" >/dev/null \
        || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
