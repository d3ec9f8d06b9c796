#!/usr/bin/env bash
# Installs what sdedge's main job and tests need on Debian/Ubuntu: the Fashion-MNIST data set
# (Debian's dataset-fashion-mnist), QEMU for the Cortex-M4 board, and the Cortex-M rustup
# targets of the boards.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    echo "setup: installing dataset-fashion-mnist"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist
fi

if ! command -v qemu-system-arm >/dev/null; then
    echo "setup: installing qemu-system-arm"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-arm
fi

if command -v rustup >/dev/null; then
    for t in thumbv7em-none-eabihf thumbv6m-none-eabi; do
        rustup target list --installed | grep -qx "$t" || rustup target add "$t"
    done
fi
echo "setup: ok"
