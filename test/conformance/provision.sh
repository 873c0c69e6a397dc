#!/usr/bin/env bash
# Installs the Debian packages the conformance tests run the peers' real Python code under:
# python3-torch (EAP-IG graph.py), python3-matplotlib (graph.py imports EAP-IG's visualization
# module), python3-pydantic (circuit-tracer graph_models.py) and python3-onnx (onnx.checker).
# Idempotent: apt-get runs only for packages that are missing, and `apt-get update` at most once.
# Usage: test/conformance/provision.sh   (needs root or sudo for apt; prints what it did)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for p in python3-torch python3-pydantic python3-onnx python3-numpy python3-matplotlib; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "conformance: python3-torch, python3-pydantic, python3-onnx python3-matplotlib already installed"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "conformance: installing ${need[*]} with apt-get"
$sudo apt-get -o DPkg::Lock::Timeout=900 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "conformance: installed ${need[*]}"
