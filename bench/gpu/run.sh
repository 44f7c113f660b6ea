#!/bin/sh
# GPU check (README.md): onnxruntime WebGPU (Vulkan) vs CPU vs PyTorch CUDA on the same models.
# Usage (in the unpacked bundle): ./run.sh [steps] [models]   e.g. ./run.sh 20 gpt-tiny,gpt-d256
# Writes results/node.json, results/torch.json, results/results.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out="$here/results"
steps=${1:-20}
models=${2:-gpt-tiny,gpt-d256,gpt-d512}
mkdir -p "$out"
node="$here/node/bin/node"
check="$here/app/dist/gpu/check.mjs"

# Vulkan loader: the system's (Debian/Ubuntu package libvulkan1) when present, else the bundled Khronos one.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "vulkan: no libvulkan.so.1 on the system; using the bundled loader"
fi
# Vulkan driver (ICD): the NVIDIA driver ships nvidia_icd.json (needs NVIDIA_DRIVER_CAPABILITIES with
# 'graphics' in containers). Without a manifest but with the driver's libGLX_nvidia.so.0, write one.
icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null)
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "$icds" ]; then
  if ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia.so.0'; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.0"}}\n' > "$out/nvidia_icd.json"
    export VK_ICD_FILENAMES="$out/nvidia_icd.json"
    echo "vulkan: no ICD manifest; wrote $VK_ICD_FILENAMES for the NVIDIA driver's libGLX_nvidia.so.0"
  else
    echo "vulkan: no ICD manifest and no NVIDIA Vulkan library; WebGPU will report no adapter"
  fi
fi
echo "vulkan ICDs: ${VK_ICD_FILENAMES:-$icds}"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not found"

"$node" "$check" --ep webgpu --steps "$steps" --models "$models" --out "$out"
"$node" "$check" --write-models "$out/models.json" --models "$models"
if command -v python3 >/dev/null; then
  python3 "$here/torch_gpt.py" "$out/models.json" "$out/torch.json" --steps "$steps" || echo "torch_gpt.py failed"
else
  echo '{"runs": [], "error": "python3 not found"}' > "$out/torch.json"
fi
"$node" "$check" --report "$out"
echo "results: $out/results.md"
