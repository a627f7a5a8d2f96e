#!/usr/bin/env bash
# Set everything up (virtual environment, Python packages, FFmpeg; for the tests also
# headless Chromium), then run one job.
#
#   bash quickstart.sh run VIDEO OUT_DIR [process_long_video.py flags...]
#   bash quickstart.sh demo [flags]    (or `run` without a video): the reference's demo beside its published result
#   bash quickstart.sh test [pytest args...]
#   bash quickstart.sh setup
#
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

say() { printf 'quickstart: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

as_root_apt() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

apt_install() {
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_ffmpeg() {
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 && return
  as_root_apt || die "FFmpeg is missing: install it (Debian/Ubuntu: sudo apt-get install ffmpeg), then run this again"
  apt_install ffmpeg
}

# Headless Chromium for the tests that open the HTML reports in a browser
# (tests/test_report_browser.py): installed by `setup` and `test` only, and only when
# running as root with apt, as FFmpeg is; elsewhere those tests skip (and fail under CI=true).
ensure_chromium() {
  local b
  for b in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$b" >/dev/null 2>&1 && return
  done
  if as_root_apt && apt_install chromium; then
    return
  fi
  say "headless Chromium is missing: the browser tests will skip (and fail under CI=true);" \
      "install it (Debian: sudo apt-get install chromium) to run them"
}

ensure_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is missing: install Python 3.10 or newer"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "Python 3.10 or newer is needed, found $(python3 --version 2>&1)"
  [ -x "$PY" ] && return
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    ver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    as_root_apt || die "python3 cannot make a virtual environment: install python$ver-venv (sudo apt-get install python$ver-venv)"
    apt_install "python$ver-venv"
    python3 -m venv "$VENV"
  fi
}

# A CPU build of torch where no NVIDIA GPU is present: PyPI's default Linux wheel
# drags several GB of CUDA libraries along.  Order: a CPU wheel pip already knows
# locally (find-links), then PyTorch's CPU index, then PyPI's default build.
install_torch() {
  local pip=("$PY" -m pip install -q)
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    say "NVIDIA GPU found: installing torch with CUDA"
    "${pip[@]}" "torch>=2.1"
  elif "${pip[@]}" --no-index --no-deps torch >/dev/null 2>&1; then
    say "no GPU: installed a local CPU build of torch"
  elif "${pip[@]}" --timeout 30 --retries 1 --index-url https://download.pytorch.org/whl/cpu "torch>=2.1"; then
    say "no GPU: installed the CPU build of torch"
  else
    say "no GPU, and the CPU build of torch could not be reached: installing PyPI's default build"
    "${pip[@]}" "torch>=2.1"
  fi
}

ensure_packages() {
  local req=$1 stamp
  stamp="$VENV/.installed-$(cat requirements.txt "$req" | sha1sum | cut -c1-12)"
  [ -f "$stamp" ] && return
  "$PY" -c 'import torch' >/dev/null 2>&1 || install_torch
  say "installing Python packages from $req"
  "$PY" -m pip install -q -r "$req"
  touch "$stamp"
}

# jemalloc (Debian's libjemalloc2): the scripts preload it when it is installed
# (syncnet/allocator.py; the networks run faster with flat memory), else glibc's malloc
# serves.  Optional: installed only as root with apt, silently skipped otherwise.
ensure_jemalloc() {
  "$PY" -c 'import sys; sys.path.insert(0, "."); from syncnet.allocator import find_library as f
sys.exit(f("jemalloc") is None)' >/dev/null 2>&1 && return
  as_root_apt && apt_install libjemalloc2 2>/dev/null || true
}

setup() {
  ensure_ffmpeg
  ensure_python
  ensure_jemalloc
  ensure_packages "${1:-requirements.txt}"
}

# The reference's demo: SyncNet on its example video (fetched beside the weights), our
# numbers beside its README's (offset 3, min dist 5.353, confidence 10.021); exit 1 when
# they disagree.  Offline, the weights download stops it with one line, as for `run`.
demo() {
  setup requirements.txt
  "$PY" -m syncnet.weights ensure --example
  exec "$PY" -m syncnet.weights demo "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    demo "$@" ;;
  setup)
    setup requirements-dev.txt
    ensure_chromium ;;
  test)
    setup requirements-dev.txt
    ensure_chromium
    exec "$PY" -m pytest "$@" ;;
  run)
    if [ $# -eq 0 ] || [[ $1 == -* ]]; then demo "$@"; fi  # no video: the demo (flags go to it)
    [ $# -ge 2 ] || die "usage: bash quickstart.sh run VIDEO OUT_DIR [process_long_video.py flags...] (without a video: the demo)"
    video=$1 out=$2
    shift 2
    setup requirements.txt
    "$PY" -m syncnet.weights ensure
    exec "$PY" process_long_video.py --input_video "$video" --output_dir "$out" "$@" ;;
  *)
    die "usage: bash quickstart.sh {run VIDEO OUT_DIR|demo|test|setup}" ;;
esac
