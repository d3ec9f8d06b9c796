#!/usr/bin/env bash
# Installs what sdedge's main job and tests need on Debian/Ubuntu: the Fashion-MNIST data set
# (Debian's dataset-fashion-mnist) and the Cortex-M rustup target the runtime is checked on.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    echo "setup: installing dataset-fashion-mnist"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist
fi

if command -v rustup >/dev/null; then
    rustup target list --installed | grep -qx thumbv7em-none-eabihf \
        || rustup target add thumbv7em-none-eabihf
fi
echo "setup: ok"
