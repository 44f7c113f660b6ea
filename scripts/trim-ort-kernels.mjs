#!/usr/bin/env node
// Regenerates data/ort-kernels.json (the CUDA kernel table the product ships) from the team's research copy
// of onnxruntime's kernel registry (data/source/ort-kernels.all-providers.json, itself transcribed from
// microsoft/onnxruntime docs/OperatorKernels.md; see its "source" block). Keeps CUDAExecutionProvider,
// domains ai.onnx and com.microsoft, entries unchanged.
// Usage: node scripts/trim-ort-kernels.mjs data/source/ort-kernels.all-providers.json > data/ort-kernels.json
import { readFileSync } from 'node:fs';

const full = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const cuda = full.providers.CUDAExecutionProvider;
const out = {
  source: {
    CUDAExecutionProvider: full.source.CUDAExecutionProvider,
    format: full.source.format,
    copied_from: 'data/source/ort-kernels.all-providers.json (team research copy, every provider); trimmed to CUDAExecutionProvider, domains ai.onnx and com.microsoft; entries unchanged',
    regenerate: 'node scripts/trim-ort-kernels.mjs data/source/ort-kernels.all-providers.json > data/ort-kernels.json (or re-transcribe docs/OperatorKernels.md at a newer commit)',
  },
  providers: { CUDAExecutionProvider: { 'ai.onnx': cuda['ai.onnx'], 'com.microsoft': cuda['com.microsoft'] } },
};
process.stdout.write(JSON.stringify(out) + '\n');
