#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian/Ubuntu machine, idempotently:
#   1. Debian packages (espeak-ng, ffmpeg, the asterisk Spanish prompts, Drascula's Spanish
#      voices) via apt-get when root,
#      otherwise prints the exact command to run;
#   2. a virtual environment in $VENV (default .venv); an importable torch is kept,
#      otherwise the CPU build torch==2.13.0 is installed first;
#   3. the project itself, editable, with its dev extra.
# Called by `make` (it runs only when pyproject.toml or this file changed).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
APT_PACKAGES=(espeak-ng ffmpeg asterisk-core-sounds-es-g722 asterisk-core-sounds-es drascula drascula-spanish)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run:  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "setup: (continuing; the steps that need them will stop with a clear message)" >&2
  fi
fi

if [[ ! -x $VENV/bin/python ]]; then
  if "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "setup: $PYTHON already has torch; the venv will see it (--system-site-packages)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# pip -q, and without the warnings some machines' pip configuration prints for every package
# (an extra index folder that does not exist): the setup's own lines stay readable.
pip_install() {
  "${PIP[@]}" install "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC (CPU build where one is available locally)"
  pip_install "$TORCH_SPEC"
fi
echo "setup: installing flamenco_lib and its dependencies into $VENV"
pip_install -e ".[dev]"
"$VENV/bin/python" -c "import torch, transformers, librosa; print(f'setup: torch {torch.__version__}, transformers {transformers.__version__}, librosa {librosa.__version__}')"
