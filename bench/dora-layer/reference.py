"""PyTorch reference for bench/dora-layer: one d×d layer with PEFT 0.20's LoRA / DoRA formula (DoraLinearLayer:
weight norm of W + s·lora_B(lora_A(eye)) detached, y = base + (m/n − 1)·base_nobias + (m/n)·s·B A x̃, base(x)
reused when dropout is identity or in eval; no eval cache, PEFT's default). Forward + backward + torch AdamW.
Run by run.ts with /usr/bin/python3 (Debian torch 1.13) and OPENBLAS_CORETYPE=SkylakeX. Prints one JSON line."""
import argparse, json, os, resource, statistics, sys, time
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from openblas import require_openblas  # noqa: E402  (bench/openblas.py)

require_openblas("bench/dora-layer reference.py")

p = argparse.ArgumentParser()
for k, d in [("--d", 2048), ("--tokens", 2048), ("--r", 16), ("--reps", 5)]:
    p.add_argument(k, type=int, default=d)
p.add_argument("--method", default="dora"); p.add_argument("--dropout", type=float, default=0.0); p.add_argument("--mode", default="train")
a = p.parse_args()
torch.manual_seed(0)
D, T, r = a.d, a.tokens, a.r
s = 2 * r / r
W = torch.randn(D, D) / D ** 0.5; b = torch.randn(D) * 0.01
A = (torch.randn(r, D) / D ** 0.5).requires_grad_(); B = (torch.randn(D, r) / r ** 0.5).requires_grad_()
m = None
if a.method == "dora":
    with torch.no_grad():
        m = torch.linalg.norm(W + s * (B @ A), dim=1).requires_grad_()
params = [A, B] + ([m] if m is not None else [])
opt = torch.optim.AdamW(params, lr=1e-4)
drop = torch.nn.Dropout(a.dropout) if a.dropout > 0 else torch.nn.Identity()
train = a.mode == "train"
drop.train(train)
x = torch.randn(T, D); dy = torch.randn(T, D) * 0.01

def forward(x):
    result = F.linear(x, W, b)
    if isinstance(drop, torch.nn.Identity) or not train:
        xd, base_result = x, result
    else:
        xd, base_result = drop(x), None
    lora = F.linear(F.linear(xd, A), B)
    if m is None:
        return result + lora * s
    # PEFT DoraLinearLayer.forward: lora_B(lora_A(eye)) builds BA through the layers
    eye = torch.eye(D, dtype=x.dtype)
    lora_weight = F.linear(F.linear(eye, A), B).T
    weight_norm = torch.linalg.norm(W + s * lora_weight, dim=1).detach()
    mag = (m / weight_norm).view(1, -1)
    if base_result is not None:
        base_result = base_result - b
    else:
        base_result = F.linear(xd, W)
    return result + (mag - 1) * base_result + mag * lora * s

times = []
for i in range(a.reps + 2):
    t0 = time.perf_counter()
    if train:
        xx = x.clone().requires_grad_()
        forward(xx).backward(dy)
        opt.step(); opt.zero_grad(set_to_none=True)
    else:
        with torch.no_grad():
            forward(x)
    if i >= 2:
        times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"impl": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(), "method": a.method, "dropout": a.dropout,
                  "mode": a.mode, "ms": statistics.median(times), "maxRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
