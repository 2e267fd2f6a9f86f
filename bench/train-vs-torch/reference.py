"""PyTorch reference for bench/train-vs-torch: the same LLaMA (HF LlamaForCausalLM maths: RMSNorm, rotate_half RoPE,
eager causal attention with a float32 softmax, SiLU MLP, untied head), the same weights (model.safetensors written by
run.ts, read here with struct/json + torch.frombuffer: no safetensors package on Debian), the same token ids, the
same adapter A (B = 0, PEFT's init), mean next-token cross-entropy, torch.optim.AdamW(lr 1e-4). LoRA and DoRA use
PEFT 0.20's formulas (DoraLinearLayer: norm of W + s·lora_B(lora_A(eye)) detached; base result reused when dropout
is 0; with --dropout p, lora.Linear's path: x̃ = dropout(x) feeds lora_A and, for DoRA, a second base product x̃·Wᵀ).
Run by run.ts with /usr/bin/python3 (Debian torch 1.13) and OPENBLAS_CORETYPE=SkylakeX. Prints one JSON line."""
import argparse, json, os, resource, struct, sys, time
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from openblas import require_openblas  # noqa: E402  (bench/openblas.py)

require_openblas("bench/train-vs-torch reference.py")

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True); p.add_argument("--mode", default="dora"); p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=5); p.add_argument("--warmup", type=int, default=2)
p.add_argument("--dropout", type=float, default=0.0)
a = p.parse_args()
torch.set_num_threads(a.threads)


def read_safetensors(path):
    """{name: tensor} viewing one bytearray (no copies): 8-byte LE header length, JSON header, raw LE data."""
    buf = bytearray(os.path.getsize(path))
    with open(path, "rb") as f:
        f.readinto(buf)
    n = struct.unpack("<Q", bytes(buf[:8]))[0]
    header = json.loads(bytes(buf[8:8 + n]))
    dtypes = {"F32": (torch.float32, 4), "I32": (torch.int32, 4)}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        dt, size = dtypes[v["dtype"]]
        s, e = v["data_offsets"]
        out[k] = torch.frombuffer(buf, dtype=dt, count=(e - s) // size, offset=8 + n + s).reshape(v["shape"])
    return out


cfg = json.load(open(os.path.join(a.dir, "config.json")))
Wt = read_safetensors(os.path.join(a.dir, "model.safetensors"))
inp = read_safetensors(os.path.join(a.dir, "inputs.safetensors"))
H, L, nh = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
hd, eps, theta, V = H // nh, cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0), cfg["vocab_size"]
r, alpha = 16, 32
s = alpha / r
ids = inp["input_ids"].long()
Bsz, S = ids.shape
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
mode = a.mode


class Lin:
    """A frozen Linear, plus LoRA A/B (and DoRA m) in lora/dora mode. PEFT lora.Linear + DoraLinearLayer."""
    def __init__(self, key):
        self.W = Wt[key + ".weight"]
        self.A = self.B = self.m = None
        path = key
        if mode != "full" and key.split(".")[-1] in TARGETS:
            self.A = inp[path + ".lora_A"].clone().requires_grad_()
            self.B = torch.zeros(self.W.shape[0], r, requires_grad=True)
            if mode == "dora":
                with torch.no_grad():
                    self.m = torch.linalg.norm(self.W + s * (self.B @ self.A), dim=1).requires_grad_()

    def params(self):
        return [t for t in (self.A, self.B, self.m) if t is not None]

    def __call__(self, x):
        result = F.linear(x, self.W)
        if self.A is None:
            return result
        xd = F.dropout(x, a.dropout, training=True) if a.dropout > 0 else x
        lora = F.linear(F.linear(xd, self.A), self.B)
        if self.m is None:
            return result + lora * s
        eye = torch.eye(self.A.shape[1], dtype=x.dtype)
        lora_weight = F.linear(F.linear(eye, self.A), self.B).T
        weight_norm = torch.linalg.norm(self.W + s * lora_weight, dim=1).detach()
        mag = (self.m / weight_norm).view(1, -1)
        base = result if a.dropout == 0 else F.linear(xd, self.W)  # PEFT: the base result is reused only without dropout
        return result + (mag - 1) * base + mag * lora * s


embed = Wt["model.embed_tokens.weight"]
norm_w = Wt["model.norm.weight"]
head = Lin("lm_head")
layers = []
for i in range(L):
    k = f"model.layers.{i}"
    layers.append({
        "ln1": Wt[f"{k}.input_layernorm.weight"], "ln2": Wt[f"{k}.post_attention_layernorm.weight"],
        **{n: Lin(f"{k}.self_attn.{n}") for n in ["q_proj", "k_proj", "v_proj", "o_proj"]},
        **{n: Lin(f"{k}.mlp.{n}") for n in ["gate_proj", "up_proj", "down_proj"]},
    })

inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
freqs = torch.outer(torch.arange(S).float(), inv_freq)
emb = torch.cat((freqs, freqs), dim=-1)
cos, sin = emb.cos(), emb.sin()
mask = torch.full((S, S), float("-inf")).triu(1)


def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rot(x):
    return torch.cat((-x[..., hd // 2:], x[..., : hd // 2]), dim=-1)


def forward():
    h = F.embedding(ids, embed)
    for ly in layers:
        x = rms(h, ly["ln1"])
        q, k, v = (ly[n](x).view(Bsz, S, nh, hd).transpose(1, 2) for n in ["q_proj", "k_proj", "v_proj"])
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        att = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5 + mask, dim=-1, dtype=torch.float32) @ v
        h = h + ly["o_proj"](att.transpose(1, 2).reshape(Bsz, S, H))
        x = rms(h, ly["ln2"])
        h = h + ly["down_proj"](F.silu(ly["gate_proj"](x)) * ly["up_proj"](x))
    logits = head(rms(h, norm_w))
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))


if mode == "full":
    params = [embed, norm_w, head.W] + [t for ly in layers for t in ([ly["ln1"], ly["ln2"]] + [ly[n].W for n in TARGETS])]
    for t in params:
        t.requires_grad_()
else:
    params = [t for ly in layers for n in TARGETS for t in ly[n].params()]
opt = torch.optim.AdamW(params, lr=1e-4)

times, loss0 = [], None
for i in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    loss = forward()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    lv = loss.item()
    if loss0 is None:
        loss0 = lv
    if i >= a.warmup:
        times.append(time.perf_counter() - t0)
print(json.dumps({"impl": "torch", "mode": mode, "threads": torch.get_num_threads(), "step_s": times, "tokens": Bsz * S,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loss0": loss0,
                  "torch": torch.__version__}))
