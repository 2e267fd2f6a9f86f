"""PyTorch reference for bench/models/run.ts: the same LLaMA (HF LlamaForCausalLM maths, eager attention as
transformers runs it on torch 1.13) with random weights, timed for prefill and KV-cached greedy generation.

Usage: reference.py CONFIG_JSON  ->  one JSON line
  CONFIG_JSON: {"hidden","layers","heads","kv_heads","inter","vocab","prefill_batch","prefill_len",
                "prompt_len","new_tokens","runs","warmup","threads"}
Run with Debian's /usr/bin/python3 (torch 1.13) and OPENBLAS_CORETYPE=SkylakeX.
"""
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from openblas import require_openblas  # noqa: E402  (bench/openblas.py)


def main():
    require_openblas("bench/models reference.py")
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c["threads"])
    torch.manual_seed(0)
    d, nh, nkv, L, m, V = c["hidden"], c["heads"], c["kv_heads"], c["layers"], c["inter"], c["vocab"]
    hd = d // nh
    W = lambda o, i: torch.randn(o, i) * 0.02
    layers = [dict(q=W(nh * hd, d), k=W(nkv * hd, d), v=W(nkv * hd, d), o=W(d, nh * hd),
                   g=W(m, d), u=W(m, d), dn=W(d, m), n1=torch.ones(d), n2=torch.ones(d)) for _ in range(L)]
    emb, head, normf = W(V, d), W(V, d), torch.ones(d)
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))

    def rot(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return torch.cat((-x2, x1), -1)

    def forward(ids, cache):
        B, S = ids.shape
        start = cache[0][0].shape[2] if cache and cache[0] else 0
        pos = torch.arange(start, start + S).float()
        f = torch.outer(pos, inv)
        e = torch.cat((f, f), -1)
        cos, sin = e.cos(), e.sin()
        h = emb[ids]
        for i, p in enumerate(layers):
            x = rms(h, p["n1"])
            q = (x @ p["q"].T).view(B, S, nh, hd).transpose(1, 2)
            k = (x @ p["k"].T).view(B, S, nkv, hd).transpose(1, 2)
            v = (x @ p["v"].T).view(B, S, nkv, hd).transpose(1, 2)
            q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
            if cache is not None:
                if cache[i]:
                    k, v = torch.cat((cache[i][0], k), 2), torch.cat((cache[i][1], v), 2)
                cache[i] = (k, v)
            rep = nh // nkv
            if rep > 1:
                k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            T = k.shape[2]
            s = (q @ k.transpose(2, 3)) / math.sqrt(hd)
            if S > 1:
                mask = torch.full((S, T), float("-inf")).triu(T - S + 1)
                s = s + mask
            a = torch.softmax(s, -1) @ v
            h = h + a.transpose(1, 2).reshape(B, S, nh * hd) @ p["o"].T
            x = rms(h, p["n2"])
            h = h + (torch.nn.functional.silu(x @ p["g"].T) * (x @ p["u"].T)) @ p["dn"].T
        return rms(h, normf) @ head.T

    def timed(fn):
        for _ in range(c["warmup"]):
            fn()
        ts = []
        for _ in range(c["runs"]):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return sorted(ts)[len(ts) // 2]

    with torch.no_grad():
        ids = torch.randint(0, V, (c["prefill_batch"], c["prefill_len"]))
        prefill_s = timed(lambda: forward(ids, None))
        prompt = torch.randint(0, V, (1, c["prompt_len"]))

        def gen():
            cache = [None] * L
            logits = forward(prompt, cache)
            for _ in range(c["new_tokens"] - 1):  # N tokens: the prompt forward gives the first
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                logits = forward(nxt, cache)

        gen_s = timed(gen)
    print(json.dumps({
        "prefill_tok_s": c["prefill_batch"] * c["prefill_len"] / prefill_s,
        "gen_tok_s": c["new_tokens"] / gen_s,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
