#!/usr/bin/env bash
# What the browser tests need beyond Python packages, installed when missing: Debian's Chromium
# (Playwright drives it through executable_path; Playwright's own browser download is not used)
# and the pinned third-party browser code of package-lock.json (stock Uppy, axe-core).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests..."
    if [ "$(id -u)" -eq 0 ]; then
        apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
    else
        sudo apt-get install -y -q chromium >/dev/null
    fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
