"""PyTorch side of the GPU check (bench/gpu/README.md): the same GPT-2-style architectures, sizes, batches
and optimizer as check.mjs (read from models.json, which check.mjs writes), trained on synthetic tokens with
AdamW; records steps/s (median step after warm-up) on CUDA when available, else CPU.

Architecture (fixtures/gpt-builder.ts): token + position embeddings; per layer LayerNorm -> QKV projection
(+bias) -> heads -> QK^T / sqrt(d_head) with a causal mask -> softmax -> V -> output projection (+bias) ->
residual; LayerNorm -> MLP d -> 4d, GELU (erf) -> d -> residual; final LayerNorm; untied LM head. Hidden
weights are multiplied by fixed random 0/1 masks of density 0.25 (like the SµPar transform), so the work per
step matches. Initialisation and the SµPar multipliers are not reproduced: the loss is not compared.

    python3 torch_gpt.py models.json results/torch.json [--steps 20] [--warmup 3] [--device cuda]
"""
import json
import math
import statistics
import sys
import time


def main():
    args = sys.argv[1:]
    models_file, out_file = args[0], args[1]
    opt = {k: v for k, v in zip(args[2::2], args[3::2])}
    steps, warmup = int(opt.get("--steps", 20)), int(opt.get("--warmup", 3))
    try:
        import torch
    except ImportError as e:
        json.dump({"runs": [], "error": f"PyTorch not importable ({e})"}, open(out_file, "w"))
        print(f"torch_gpt.py: PyTorch not importable ({e}); skipped", file=sys.stderr)
        return
    device = opt.get("--device") or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    runs = []
    for m in json.load(open(models_file)):
        try:
            runs.append({"id": m["id"], "device": f"{device} ({name})", "ok": True, **train(torch, m, device, steps, warmup)})
        except Exception as e:  # a failure of one model is recorded, not fatal
            runs.append({"id": m["id"], "device": device, "ok": False, "error": str(e).splitlines()[0]})
    json.dump({"torch": f"{torch.__version__} on {device} ({name})", "runs": runs}, open(out_file, "w"), indent=1)


def train(torch, m, device, steps, warmup):
    nn = torch.nn
    F = torch.nn.functional
    g = m["gpt"]
    V, D, L, H, P = g["vocab"], g["dModel"], g["layers"], g["heads"], g["maxPos"]
    B, T = m["batch"], m["seq"]
    gen = torch.Generator().manual_seed(0)

    def masked(shape):
        w = nn.Parameter(torch.randn(*shape, generator=gen) * 0.02)
        mask = (torch.rand(*shape, generator=gen) < 0.25).float()
        return w, mask

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
            self.w_qkv, self.m_qkv = masked((D, 3 * D))
            self.w_o, self.m_o = masked((D, D))
            self.w_fc, self.m_fc = masked((D, 4 * D))
            self.w_pr, self.m_pr = masked((4 * D, D))
            self.b_qkv, self.b_o = nn.Parameter(torch.zeros(3 * D)), nn.Parameter(torch.zeros(D))
            self.b_fc, self.b_pr = nn.Parameter(torch.zeros(4 * D)), nn.Parameter(torch.zeros(D))

        def forward(self, x, causal):
            h = self.ln1(x) @ (self.w_qkv * self.m_qkv) + self.b_qkv
            q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in h.split(D, dim=-1))
            s = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
            a = torch.softmax(s.masked_fill(~causal, float("-inf")), dim=-1) @ v
            x = x + a.transpose(1, 2).reshape(B, T, D) @ (self.w_o * self.m_o) + self.b_o
            f = F.gelu(self.ln2(x) @ (self.w_fc * self.m_fc) + self.b_fc)
            return x + f @ (self.w_pr * self.m_pr) + self.b_pr

    class Gpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, D), nn.Embedding(P, D)
            self.blocks = nn.ModuleList([Block() for _ in range(L)])
            self.ln_f, self.head = nn.LayerNorm(D), nn.Linear(D, V, bias=False)

        def forward(self, ids):
            causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=ids.device))
            x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))
            for b in self.blocks:
                x = b(x, causal)
            return self.head(self.ln_f(x))

    model = Gpt().to(device)
    for b in model.blocks:
        for n in ("m_qkv", "m_o", "m_fc", "m_pr"):
            setattr(b, n, getattr(b, n).to(device))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    times, losses = [], []
    for i in range(warmup + steps):
        ids = torch.randint(0, V, (B, T), generator=gen).to(device)
        t0 = time.perf_counter()
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())  # .item() synchronises, like the ONNX loss read back each step
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    return {"stepsPerS": 1000 / ms, "medianStepMs": ms, "losses": losses}


if __name__ == "__main__":
    main()
