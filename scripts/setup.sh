#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment: system library, torch, then adop with its dependencies.
# Idempotent: a second run with an unchanged pyproject.toml does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ADOP_VENV:-.venv}"
# torch first, the CPU build by default: a bare `pip install torch` resolves to a CUDA build of several GB.
TORCH_SPEC="${ADOP_TORCH_SPEC:-torch==2.13.0}"
STAMP="$VENV/.adop-installed"

have_libusb() { ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; }

apt_install() {
  # Debian/Ubuntu packages, as root or through password-less sudo; quietly does nothing elsewhere.
  local run=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
    run="sudo"
  fi
  command -v apt-get >/dev/null || return 1
  $run apt-get install -y -q "$@" >/dev/null 2>&1 || { $run apt-get update -q >/dev/null && $run apt-get install -y -q "$@" >/dev/null; }
}

if ! have_libusb; then
  # open3d links against libusb-1.0, which a fresh Debian/Ubuntu machine lacks.
  apt_install libusb-1.0-0 || true
  if ! have_libusb; then
    echo "setup: open3d needs the system library libusb-1.0 and it could not be installed automatically." >&2
    echo "setup: install it and run again: Debian/Ubuntu 'sudo apt-get install libusb-1.0-0'," >&2
    echo "setup: Fedora/RHEL 'sudo dnf install libusb1', macOS 'brew install libusb'." >&2
    exit 1
  fi
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  # The studio page is tested in a real headless browser: Debian's chromium and its chromedriver.
  echo "setup: installing chromium and chromium-driver (the studio page's browser test)" >&2
  apt_install chromium chromium-driver || echo "setup: chromium could not be installed; the studio page's browser test will be skipped" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && "$VENV/bin/python" -c "import adop, torch" 2>/dev/null; then
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC" >&2
  "$VENV/bin/pip" install -q "$TORCH_SPEC" 2>&1 | grep -v "^WARNING: Location" || true
fi
echo "setup: installing adop and its dependencies into $VENV" >&2
"$VENV/bin/pip" install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import adop, torch, prefect, open3d, pycolmap, OpenImageIO" \
  || { echo "setup: the environment is incomplete; see the pip output above" >&2; exit 1; }
touch "$STAMP"
