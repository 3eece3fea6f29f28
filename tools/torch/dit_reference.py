#!/usr/bin/python3
"""PyTorch reference DiT for checking dmdr's DiT (nn/dit.c) against an independent implementation.

The model re-implements facebookresearch/DiT models.py (adaLN-Zero DiT, learn_sigma=False) used as
a flow-matching velocity model: forward(x, t, y) with t in [0, 1] entering the timestep embedder as
1000 t. Parameter names are exactly the reference state_dict names, so weights move between the
two implementations by name. Run with Debian's python3 and python3-torch (no pip packages).

Make the fixture the C suite test/test_parity.c reads (deterministic: the same bytes on every
run of the same torch build; it rewrites the file), from the repository root:
    /usr/bin/python3 tools/torch/dit_reference.py \
        --write-fixture test/fixtures/dit_parity.safetensors

Check a checkpoint written by dmdr: load its model weights by name (strict; "ema." and "optim."
keys are skipped; with --ema the "ema." weights replace the trainable ones), run the forward on the fixture's
x, t, y and print v (one sample per line, %.9g), optionally also writing it as safetensors:
    /usr/bin/python3 tools/torch/dit_reference.py --check-checkpoint run/checkpoint.safetensors \
        [--ema] [--inputs test/fixtures/dit_parity.safetensors] [--out v.safetensors]
--inputs is any safetensors file with x (B, C, H, W) F32, t (B) F32 and y (B) I32 that fit the
model (the fixture's x is (4, 1, 8, 8); for other sizes write such a file with dmdr or numpy).
The model configuration comes from the checkpoint's "model_config" metadata (dmdr's JSON) when
present, else from --image-size --in-channels --patch --hidden --depth --heads --mlp-ratio
--num-classes (defaults: the fixture's configuration).
"""
import argparse
import json
import math
import struct
import sys

import numpy as np
import torch
from torch import nn

FIXTURE_CONFIG = dict(image_size=8, in_channels=1, patch=2, hidden=32, depth=2, heads=2,
                      mlp_ratio=4.0, num_classes=3)
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
STEPS = 3


# ---- the model (facebookresearch/DiT models.py, timm Attention / Mlp / PatchEmbed) -------------

def modulate(x, shift, scale):  # x (B, T, C), shift, scale (B, C)
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):  # (B, C, H, W) -> (B, T, hidden), T = (H / p)^2
    def __init__(self, patch, in_channels, hidden):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):  # (B, T, C) -> (B, T, C)
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        D = C // self.heads
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, D).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) / math.sqrt(D)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):  # (..., dim) -> (..., dim)
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TimestepEmbedder(nn.Module):  # t (B) -> (B, hidden)
    def __init__(self, hidden, freq_size=256):
        super().__init__()
        self.freq_size = freq_size
        self.mlp = nn.Sequential(nn.Linear(freq_size, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):  # t (B) -> (B, dim): [cos, sin]
        # in t's dtype: float32 as the reference, float64 for the fixture's float64 twin
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=t.dtype) / half)
        args = t[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t):
        return self.mlp(self.timestep_embedding(t, self.freq_size))


class LabelEmbedder(nn.Module):  # y (B) in [0, num_classes] -> (B, hidden); num_classes = null
    def __init__(self, num_classes, hidden):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden)

    def forward(self, y):  # label dropout happens in the trainer, not here
        return self.embedding_table(y)


class DiTBlock(nn.Module):  # x (B, T, C), c (B, C) -> (B, T, C)
    def __init__(self, hidden, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden, int(hidden * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
            self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):  # x (B, T, C), c (B, C) -> (B, T, p * p * out)
    def __init__(self, hidden, patch, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


def sincos_1d(dim, pos):  # pos (M) -> (M, dim): [sin, cos], in float64 as the reference
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid_size):  # -> (grid_size^2, dim); the reference's grid puts w first
    grid = np.stack(np.meshgrid(np.arange(grid_size, dtype=np.float32),
                                np.arange(grid_size, dtype=np.float32)), axis=0)
    return np.concatenate([sincos_1d(dim // 2, grid[0]), sincos_1d(dim // 2, grid[1])], axis=1)


class DiT(nn.Module):  # x (B, C, H, W), t (B) in [0, 1], y (B) -> v (B, C, H, W)
    def __init__(self, image_size, in_channels, patch, hidden, depth, heads, mlp_ratio,
                 num_classes):
        super().__init__()
        self.channels, self.patch = in_channels, patch
        self.x_embedder = PatchEmbed(patch, in_channels, hidden)
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = LabelEmbedder(num_classes, hidden)
        grid = image_size // patch
        self.pos_embed = nn.Parameter(torch.from_numpy(sincos_2d(hidden, grid)).float()[None],
                                      requires_grad=False)
        self.blocks = nn.ModuleList(DiTBlock(hidden, heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(hidden, patch, in_channels)

    def unpatchify(self, x):  # (B, T, p * p * C) -> (B, C, H, W)
        c, p = self.channels, self.patch
        h = w = int(x.shape[1] ** 0.5)
        x = torch.einsum("nhwpqc->nchpwq", x.reshape(x.shape[0], h, w, p, p, c))
        return x.reshape(x.shape[0], c, h * p, w * p)

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(1000 * t) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))


# ---- safetensors, by hand (Debian has no python3-safetensors) ------------------------------------

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
          "BF16": torch.bfloat16, "I32": torch.int32, "I64": torch.int64}


def save_safetensors(path, tensors, metadata):
    kinds = {torch.float32: ("F32", "<f4"), torch.int32: ("I32", "<i4")}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        dtype, layout = kinds[t.dtype]
        data = t.detach().cpu().numpy().astype(layout).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data as the Python library does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors(path):  # -> ({name: tensor}, {key: value})
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        buf = bytearray(raw[8 + n + begin:8 + n + end])
        tensors[name] = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors, metadata


# ---- the fixture ------------------------------------------------------------------------------

def train_steps(model, x, t, y, target):  # -> (v, [loss per step]) after STEPS AdamW steps
    with torch.no_grad():
        v = model(x, t, y)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], **ADAMW)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((model(x, t, y) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return v, losses


def dmdr_config_json(cfg):  # the model_config metadata dmdr writes (nn/model.c)
    full = dict(kind="dit", data_dim=0, channels=0, levels=0, res_blocks=0, groups=0,
                mlp_width=0, mlp_layers=0, channel_mult=[0, 0, 0, 0], **cfg)
    return json.dumps(full)


def write_fixture(path, seed):
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(seed)
    model = DiT(**FIXTURE_CONFIG)
    # The reference init zeroes adaLN and the final layer (v = 0); random values make every
    # parameter matter. The 256-wide sinusoid layer gets a smaller std so its outputs stay of
    # order one like the others'.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.normal_(0.0, 0.05 if name == "t_embedder.mlp.0.weight" else 0.2)
    B, C, S = 4, FIXTURE_CONFIG["in_channels"], FIXTURE_CONFIG["image_size"]
    x = torch.randn(B, C, S, S)
    t = torch.tensor([0.03, 0.35, 0.62, 0.97])
    y = torch.tensor([0, 2, 3, 0], dtype=torch.int32)  # 3 = null label; label 1 unused
    target = torch.randn(B, C, S, S)
    params = {k: v.clone() for k, v in model.state_dict().items()}

    # float64 twin: the spread between it and float32 is the rounding noise any float32
    # implementation has, which the C suite's tolerances are set against.
    twin = DiT(**FIXTURE_CONFIG).double()
    twin.load_state_dict({k: v.double() for k, v in params.items()})
    v64, losses64 = train_steps(twin, x.double(), t.double(), y.long(), target.double())

    v, losses = train_steps(model, x, t, y.long(), target)
    after = model.state_dict()
    print(f"v: rms {v.pow(2).mean().sqrt():.4f}, max |v - v64| {(v - v64).abs().max():.3g}")
    print(f"losses {losses}, |loss - loss64| {[abs(a - b) for a, b in zip(losses, losses64)]}")
    hidden, drift, key_bias = FIXTURE_CONFIG["hidden"], 0.0, 0.0
    for k, p in after.items():
        d = (p.double() - twin.state_dict()[k]).abs()
        if k.endswith("attn.qkv.bias"):  # the key third has zero gradient in exact arithmetic
            key_bias = max(key_bias, d[hidden:2 * hidden].max().item())
            d[hidden:2 * hidden] = 0
        drift = max(drift, d.max().item())
    print(f"after {STEPS} steps: max |p - p64| {drift:.3g}, attention key biases {key_bias:.3g}")

    tensors = dict(params)
    tensors.update(x=x, t=t, y=y, target=target, v=v, loss=torch.tensor([losses[0]]),
                   losses=torch.tensor(losses))
    tensors.update({f"after{STEPS}.{k}": p for k, p in after.items()})
    metadata = {"model_config": dmdr_config_json(FIXTURE_CONFIG),
                "generator": "tools/torch/dit_reference.py --write-fixture",
                "torch_version": torch.__version__, "seed": str(seed),
                "adamw": json.dumps(dict(ADAMW, steps=STEPS))}
    save_safetensors(path, tensors, metadata)
    print(f"wrote {path}: {len(params)} parameters, "
          f"{sum(p.numel() for p in params.values())} values")


# ---- checking a dmdr checkpoint ------------------------------------------------------------------

def check_checkpoint(args):
    tensors, metadata = load_safetensors(args.check_checkpoint)
    if "model_config" in metadata:
        mc = json.loads(metadata["model_config"])
        if mc.get("kind") != "dit":
            sys.exit(f"{args.check_checkpoint}: model_config kind is {mc.get('kind')!r}, not 'dit'")
        cfg = {k: type(v)(mc[k]) for k, v in FIXTURE_CONFIG.items()}
    else:
        cfg = {k: getattr(args, k) for k in FIXTURE_CONFIG}
    state = {k: v for k, v in tensors.items() if not k.startswith(("ema.", "optim."))}
    if args.ema:  # EMA shadows exist for trainable weights only; fixed ones (pos_embed) stay
        state.update({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    model = DiT(**cfg)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        sys.exit(f"{args.check_checkpoint}: {e}")

    inputs, _ = load_safetensors(args.inputs)
    x, t, y = inputs["x"], inputs["t"], inputs["y"].long()
    want = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
    if tuple(x.shape[1:]) != want or int(y.max()) > cfg["num_classes"]:
        sys.exit(f"{args.inputs}: x {tuple(x.shape)} / labels up to {int(y.max())} do not fit "
                 f"the model ({want}, {cfg['num_classes']} classes)")
    with torch.no_grad():
        v = model(x, t, y)
    print(f"# v {tuple(v.shape)} from {args.check_checkpoint} on {args.inputs}")
    for row in v.reshape(v.shape[0], -1):
        print(" ".join(f"{float(a):.9g}" for a in row))
    if args.out:
        save_safetensors(args.out, {"v": v}, {"checkpoint": args.check_checkpoint})


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write-fixture", metavar="PATH")
    mode.add_argument("--check-checkpoint", metavar="PATH")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--ema", action="store_true", help="use the checkpoint's ema.* weights")
    ap.add_argument("--inputs", default="test/fixtures/dit_parity.safetensors",
                    help="safetensors with x, t, y (default: the fixture)")
    ap.add_argument("--out", help="also write v to this safetensors file")
    for k, v in FIXTURE_CONFIG.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    args = ap.parse_args()
    if args.write_fixture:
        write_fixture(args.write_fixture, args.seed)
    else:
        check_checkpoint(args)


if __name__ == "__main__":
    main()
