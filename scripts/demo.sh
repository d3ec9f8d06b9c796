#!/usr/bin/env bash
# The main job on real data: split the committed self-distilled model into an int8 per-exit
# bundle, then run it with the no_std runtime on the 10,000 Fashion-MNIST test images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build -p sdedge
./target/debug/sdedge inspect models/fmnist_resnet8_ee.onnx
./target/debug/sdedge split models/fmnist_resnet8_ee.onnx -o target/fmnist_resnet8_ee.sde
./target/debug/sdedge simulate target/fmnist_resnet8_ee.sde --onnx models/fmnist_resnet8_ee.onnx
