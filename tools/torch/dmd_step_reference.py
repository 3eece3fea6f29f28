#!/usr/bin/python3
"""PyTorch reference of one DMD distillation step of dmdr (dmdr/distill.c), on a tiny DiT.

Regenerate the fixture test/test_parity.c checks (deterministic: the same bytes on every run of
the same torch build; it rewrites the file), from the repository root, with Debian's python3 and
python3-torch (no pip packages):
    /usr/bin/python3 tools/torch/dmd_step_reference.py \
        --write-fixture test/fixtures/dmd_step_parity.safetensors

The step is distiller_step's generator turn at generator step k = 0 with the shared LoRA score
(docs/algorithm.md sections 2 to 5), done in PyTorch with the DiT of dit_reference.py (imported,
facebookresearch/DiT) plus a PEFT-style LoRA on every block's attn.qkv and attn.proj:
  1. labels y; the 2-step generator's backward simulation: per sample a step index k_i, the
     untracked chain's first prediction x0_0 = z - G(z, 1, y) from noise z, the start x0_{k-1}
     (0 for k = 0), x_in = start + t_k (eps - start), and the tracked x0 = x_in - t_k G(x_in);
  2. the DMD term: renoise x_t = x0 + t (eps' - x0) at DynaRS times; the real score (the LoRA
     at the DynaDG scale lambda_r, per-sample CFG v_y + (max(s, 1) - 1)(v_y - v_null), the
     conditional and null rows in one batch) and the fake score (LoRA at lambda_f); their x0
     predictions x_t - t v; the DMD gradient (x0_fake - x0_real) / (mean |x0 - x0_real| + 1e-8);
     the loss 0.5 mse(x0, sg(x0 - grad));
  3. the generator's gradients, global-norm clipping and one torch.optim.AdamW step;
  4. the fake score's flow loss mse(v_fake(x0 + t (eps'' - x0)), eps'' - x0) on the detached
     (pre-update) x0 at fresh DynaRS times, its LoRA gradients, clipping and one AdamW step;
  plus the 2-step sampler x0_0 = z - G(z, 1), x_1 = x0_0 + t_1 (eps - x0_0), x0_1 = x_1 - t_1 G(x_1).
Every random quantity is a fixed tensor of the fixture ("draw.*"). They are what dmdr's own
stream draws at the fixture's seed, in distiller_step's order (a Python twin of its Philox
4x32-10 stream and host draws, below), so the C suite can both compose the library's functions
on the stored tensors and run distiller_step itself at that seed. The expected values come from
a float64 run (stored rounded to float32). Float32 runs of the same code give the rounding
noise any float32 implementation has, printed per quantity and stored as "f32_gap" metadata:
chained (each stage reads float32's own earlier results, as distiller_step does) and staged
(each stage reads the stored values, as the C suite's composed cases do).
"""
import argparse
import ctypes
import ctypes.util
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import (DiT, FIXTURE_CONFIG, dmdr_config_json,  # noqa: E402 (path set above)
                           save_safetensors)

# dmdr's DistillOptions of the step (dmdr/distill.h); the tiny DiT is dit_reference's fixture's
SETTINGS = dict(batch=4, gen_steps=2, gen_shift=2.0, ratio=1,
                lora_rank=4, lora_alpha=8.0, lora_mlp=False, fake_scale=2.0,
                real_cfg=1.5, cfg_jitter=0.75,
                dyn_steps=1000, real_scale0=0.75, beta_a0=4.0, beta_b0=1.5, t_min=0.001,
                gen_lr=1e-3, fake_lr=2e-3, gen_weight_decay=0.1, fake_weight_decay=0.05,
                clip=1.0, beta1=0.9, beta2=0.999, eps=1e-8)
TORCH_SEED = 20240613   # the teacher's and the adapter's random values
FIRST_STREAM_SEED = 1   # the distiller's stream: the first seed from here whose draws cover
SAMPLE_SEED = 7         # every branch (see pick_stream_seed); the sampler's own stream


# ---- dmdr's random stream, in Python (tensor/rng.c, kernels/philox.h, kernels/cpu) -------------

_libm = ctypes.CDLL(ctypes.util.find_library("m"))
for _f in ("logf", "sinf", "cosf", "sqrtf"):
    getattr(_libm, _f).restype = ctypes.c_float
    getattr(_libm, _f).argtypes = [ctypes.c_float]
M32 = 0xFFFFFFFF
f32 = np.float32


def philox4x32_10(seed, block):
    c0, c1, c2, c3 = block & M32, (block >> 32) & M32, 0, 0
    k0, k1 = seed & M32, (seed >> 32) & M32
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


def to_unit(word):  # philox_to_unit: (0, 1], exact in float32
    return f32(((word >> 8) + 1) / 16777216.0)


class Stream:  # Rng: a Philox key and the next unused counter block
    def __init__(self, seed):
        self.seed, self.offset = seed, 0

    def block(self):
        b = philox4x32_10(self.seed, self.offset)
        self.offset += 1
        return b

    def uniform(self):  # rng_uniform_float
        return to_unit(self.block()[0])

    def below(self, bound):  # rng_below
        b = self.block()
        return ((b[0] << 32) | b[1]) % bound

    def normal(self, shape):  # tensor_normal(shape, rng, 0, 1): cpu_rng_normal
        n = int(np.prod(shape))
        out = np.empty(4 * ((n + 3) // 4), dtype=np.float32)
        for i in range(len(out) // 4):
            b = self.block()
            for j in (0, 2):
                radius = f32(_libm.sqrtf(f32(-2.0) * f32(_libm.logf(to_unit(b[j])))))
                angle = f32(6.28318530717958648) * to_unit(b[j + 1])
                out[4 * i + j] = f32(0.0) + f32(1.0) * radius * f32(_libm.cosf(angle))
                out[4 * i + j + 1] = f32(0.0) + f32(1.0) * radius * f32(_libm.sinf(angle))
        return torch.from_numpy(out[:n].reshape(shape).copy())

    def host_normal(self):  # dmdr/dyna.c, in double
        u1, u2 = float(self.uniform()), float(self.uniform())
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * 3.14159265358979323846 * u2)

    def gamma(self, shape):  # rng_gamma (Marsaglia-Tsang; shapes >= 1 only here)
        assert shape >= 1.0
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.host_normal()
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            u = float(self.uniform())
            if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
                return d * v

    def beta(self, a, b):
        x = self.gamma(a)
        y = self.gamma(b)
        return x / (x + y)


def dynars_times(stream, n, k):  # dynars_sample_times at generator step k (schedule on)
    s = SETTINGS
    p = 1.0 if k >= s["dyn_steps"] else k / s["dyn_steps"]
    c = 0.5 * (1.0 + math.cos(3.14159265358979323846 * p))
    a = 1.0 + (float(f32(s["beta_a0"])) - 1.0) * c
    b = 1.0 + (float(f32(s["beta_b0"])) - 1.0) * c
    t_min = float(f32(s["t_min"]))
    out = []
    for _ in range(n):
        u = stream.beta(a, b) if (a != 1.0 or b != 1.0) else 1.0 - float(stream.uniform())
        t = f32(t_min + (1.0 - t_min) * u)
        out.append(t if t < 1.0 else np.nextafter(f32(1.0), f32(0.0)))
    return torch.tensor(np.array(out, dtype=np.float32))


def cfg_scales(stream, n):  # score_cfg_scales, in float
    s, jitter = f32(SETTINGS["real_cfg"]), f32(SETTINGS["cfg_jitter"])
    return torch.tensor(np.array([s + jitter * (f32(2.0) * stream.uniform() - f32(1.0))
                                  for _ in range(n)], dtype=np.float32))


def time_grid(steps, shift):  # sampler_time_grid: t_k = shift u / (1 + (shift - 1) u)
    grid = []
    for k in range(steps + 1):
        u = float(f32(1.0) - f32(k) / f32(steps))
        grid.append(f32(shift * u / (1.0 + (shift - 1.0) * u)))
    grid[0], grid[steps] = f32(1.0), f32(0.0)
    return torch.tensor(np.array(grid, dtype=np.float32))


def distiller_draws(seed, check=True):
    """What distiller_step draws from its stream on a generator turn at k = 0, in its order."""
    s, n = SETTINGS, SETTINGS["batch"]
    shape = (n, FIXTURE_CONFIG["in_channels"], FIXTURE_CONFIG["image_size"],
             FIXTURE_CONFIG["image_size"])
    st = Stream(seed)
    d = {}
    d["y"] = torch.tensor([st.below(FIXTURE_CONFIG["num_classes"]) for _ in range(n)],
                          dtype=torch.int32)                              # random_labels
    d["k"] = torch.tensor([st.below(s["gen_steps"]) for _ in range(n)], dtype=torch.int32)
    if int(d["k"].max()) > 0:  # the chain's start (with K = 2 it runs one step: no re-noise)
        assert s["gen_steps"] == 2 or not check
        d["noise"] = st.normal(shape)
    elif check:
        raise ValueError("the fixture needs a backward-simulation step index > 0")
    d["eps_bs"] = st.normal(shape)                                        # backward simulation
    d["t_dmd"] = dynars_times(st, n, 0)                                   # dmd_term
    d["eps_dmd"] = st.normal(shape)
    d["cfg"] = cfg_scales(st, n)
    d["t_fake"] = dynars_times(st, n, 0)                                  # fake_update
    d["eps_fake"] = st.normal(shape)
    offset = st.offset
    sample = Stream(SAMPLE_SEED)                                          # generator_sample
    d["sample_noise"] = sample.normal(shape)
    d["sample_eps"] = sample.normal(shape)
    return d, offset


def pick_stream_seed():
    """The first seed from FIRST_STREAM_SEED whose draws reach every branch: both
    backward-simulation steps, one jittered CFG scale <= 1 (no guidance for that sample) and two
    > 1, two distinct labels."""
    seed = FIRST_STREAM_SEED
    while True:
        d, _ = distiller_draws(seed, check=False)
        k, cfg = d["k"].tolist(), d["cfg"].tolist()
        if (set(k) == {0, 1} and sum(c <= 1.0 for c in cfg) == 1
                and sum(c > 1.0 for c in cfg) >= 2 and len(set(d["y"].tolist())) >= 2):
            return seed
        seed += 1


# ---- LoRA (nn/linear.c, nn/model.c model_add_lora) ---------------------------------------------

class LoraLinear(nn.Linear):
    """nn.Linear plus PEFT's adapter: W x + b + (scale alpha / r) B (A x), the scale applied to
    the rank-r intermediate and read at forward time; scale 0 skips the adapter."""

    def __init__(self, base, rank, alpha):
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None)
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)   # (r, in)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)  # (out, r)
        self.rank, self.alpha, self.scale = rank, alpha, 1.0

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if self.scale == 0.0:
            return y
        return y + self.lora_B(self.lora_A(x) * (self.scale * self.alpha / self.rank))


def lora_sites(model):  # model_add_lora's sites: attention, and with lora_mlp the MLP
    for block in model.blocks:
        yield block.attn, "qkv"
        yield block.attn, "proj"
        if SETTINGS["lora_mlp"]:
            yield block.mlp, "fc1"
            yield block.mlp, "fc2"


def add_lora(model):
    for parent, name in lora_sites(model):
        setattr(parent, name, LoraLinear(getattr(parent, name), SETTINGS["lora_rank"],
                                         SETTINGS["lora_alpha"]))
    for name, p in model.named_parameters():  # only the adapter trains
        p.requires_grad_(".lora_" in name)


def set_lora_scale(model, scale):
    for m in model.modules():
        if isinstance(m, LoraLinear):
            m.scale = scale


def build(state, dtype, lora):
    model = DiT(**FIXTURE_CONFIG)
    if lora:
        add_lora(model)
    model.load_state_dict(state, strict=True)
    return model.to(dtype)


# ---- the step ---------------------------------------------------------------------------------

def per_sample(t, x):  # (N) -> (N, 1, 1, 1)
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def interpolate(x0, eps, t):  # flow_interpolate: x0 + t (eps - x0)
    return x0 + per_sample(t, x0) * (eps - x0)


def x0_from_velocity(x_t, v, t):  # flow_x0_from_velocity: x_t - t v
    return x_t - per_sample(t, x_t) * v


def adamw_update(params, lr, weight_decay):  # -> the pre-clip gradient norm
    s = SETTINGS
    norm = torch.nn.utils.clip_grad_norm_(params, s["clip"])
    opt = torch.optim.AdamW(params, lr=lr, betas=(s["beta1"], s["beta2"]), eps=s["eps"],
                            weight_decay=weight_decay)
    opt.step()
    return norm


def run(dtype, teacher, lora, draws, fed=None):
    """The whole step in `dtype` from the float32 inputs -> {name: tensor} of every quantity.
    Chained (fed None), each stage reads the previous stages' own results, as distiller_step
    does; staged, each stage reads them from `fed` (the float64 results rounded to float32, what
    the fixture stores), as the C suite's composed cases do."""
    s, n = SETTINGS, SETTINGS["batch"]
    c = lambda t: t.to(dtype)  # noqa: E731
    pick = lambda name, own: own if fed is None else c(fed[name])  # noqa: E731
    gen = build(teacher, dtype, lora=False)
    net = build({**teacher, **lora}, dtype, lora=True)
    y = draws["y"].long()
    null = torch.full_like(y, FIXTURE_CONFIG["num_classes"])
    grid = c(time_grid(s["gen_steps"], s["gen_shift"]))
    out = {"grid": grid}

    # 1. backward simulation (generator_backward_simulation)
    k = draws["k"].long()
    t_in = grid[k]
    with torch.no_grad():
        ones = torch.full((n,), float(grid[0]), dtype=dtype)
        x0_first = x0_from_velocity(c(draws["noise"]), gen(c(draws["noise"]), ones, y), ones)
        start = torch.zeros_like(x0_first) + x0_first * per_sample((k == 1).to(dtype), x0_first)
        x_in = interpolate(pick("bs.start", start), c(draws["eps_bs"]), t_in)
    x0 = x0_from_velocity(pick("bs.x_in", x_in), gen(pick("bs.x_in", x_in), t_in, y), t_in)
    out.update({"bs.t_in": t_in, "bs.x0_first": x0_first, "bs.start": start, "bs.x_in": x_in,
                "bs.x0": x0.detach()})

    # 2. the DMD term (dmd_term, score_real, score_fake, dmd_gradient, dmd_loss)
    t = c(draws["t_dmd"])
    x0_sg = pick("bs.x0", x0.detach())
    with torch.no_grad():
        x_t = interpolate(x0_sg, c(draws["eps_dmd"]), t)
        x_t_in = pick("dmd.x_t", x_t)
        set_lora_scale(net, s["real_scale0"])  # lambda_r(0) = lambda_r0
        v_cond = net(x_t_in, t, y)
        both = net(torch.cat([x_t_in, x_t_in]), torch.cat([t, t]), torch.cat([y, null]))
        v_y, v_null = both[:n], both[n:]
        weight = torch.clamp(c(draws["cfg"]), min=1.0) - 1.0
        v_real = v_y + per_sample(weight, v_y) * (v_y - v_null)
        x0_real = x0_from_velocity(x_t_in, pick("dmd.v_real", v_real), t)
        set_lora_scale(net, s["fake_scale"])
        v_fake = net(x_t_in, t, y)
        x0_fake = x0_from_velocity(x_t_in, pick("dmd.v_fake", v_fake), t)
        x0_real_in, x0_fake_in = pick("dmd.x0_real", x0_real), pick("dmd.x0_fake", x0_fake)
        scale = (x0_sg - x0_real_in).abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8
        grad = torch.nan_to_num((x0_fake_in - x0_real_in) / scale)
        target = x0.detach() - pick("dmd.grad", grad)
    loss = 0.5 * F.mse_loss(x0, target)
    out.update({"dmd.x_t": x_t, "dmd.v_real_cond": v_cond, "dmd.v_real": v_real,
                "dmd.v_fake": v_fake, "dmd.x0_real": x0_real, "dmd.x0_fake": x0_fake,
                "dmd.grad": grad, "dmd.loss": loss.detach().reshape(1)})

    # 3. the generator's update (generator_update)
    loss.backward()
    gen_params = [(name, p) for name, p in gen.named_parameters() if p.requires_grad]
    out.update({f"gen.grad.{name}": p.grad.clone() for name, p in gen_params})
    norm = adamw_update([p for _, p in gen_params], s["gen_lr"], s["gen_weight_decay"])
    out["gen.grad_norm"] = norm.detach().reshape(1)
    out.update({f"gen.after.{name}": p.detach().clone() for name, p in gen.state_dict().items()})

    # 4. the fake score's update (fake_update) on the pre-update x0
    t_f, eps_f = c(draws["t_fake"]), c(draws["eps_fake"])
    x_f = interpolate(x0_sg, eps_f, t_f)
    set_lora_scale(net, s["fake_scale"])
    v = net(pick("fake.x_t", x_f), t_f, y)
    fake_loss = F.mse_loss(v, eps_f - x0_sg)
    fake_loss.backward()
    out.update({"fake.x_t": x_f, "fake.v": v.detach(), "fake.loss": fake_loss.detach().reshape(1)})
    fake_params = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    out.update({f"fake.grad.{name}": p.grad.clone() for name, p in fake_params})
    norm = adamw_update([p for _, p in fake_params], s["fake_lr"], s["fake_weight_decay"])
    out["fake.grad_norm"] = norm.detach().reshape(1)
    out.update({f"fake.after.{name}": p.detach().clone() for name, p in fake_params})
    out["fake.renoise_t_mean"] = t_f.mean().reshape(1)

    # the 2-step sampler (generator_sample), from the teacher's weights (the generator before
    # its update)
    g0 = build(teacher, dtype, lora=False)
    with torch.no_grad():
        z = c(draws["sample_noise"])
        ones = torch.full((n,), float(grid[0]), dtype=dtype)
        x0_0 = x0_from_velocity(z, g0(z, ones, y), ones)
        t1 = torch.full((n,), float(grid[1]), dtype=dtype)
        x_1 = interpolate(pick("sample.x0_0", x0_0), c(draws["sample_eps"]), t1)
        x_1_in = pick("sample.x_1", x_1)
        x0_1 = x0_from_velocity(x_1_in, g0(x_1_in, t1, y), t1)
    out.update({"sample.x0_0": x0_0, "sample.x_1": x_1, "sample.x0_1": x0_1})
    return out


# ---- the fixture ------------------------------------------------------------------------------

def random_weights():  # -> teacher state (float32), adapter state (float32)
    torch.manual_seed(TORCH_SEED)
    model = DiT(**FIXTURE_CONFIG)
    # as dit_reference's fixture: random values everywhere (the reference init zeroes adaLN and
    # the final layer), the 256-wide sinusoid layer smaller
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.normal_(0.0, 0.05 if name == "t_embedder.mlp.0.weight" else 0.2)
    teacher = {k: v.clone() for k, v in model.state_dict().items()}
    add_lora(model)
    lora = {}
    with torch.no_grad():  # A as PEFT's gaussian init (std 1 / r); B random, not zero
        for name, p in model.named_parameters():
            if ".lora_A." in name:
                lora[name] = torch.randn(p.shape) / SETTINGS["lora_rank"]
            elif ".lora_B." in name:
                lora[name] = 0.05 * torch.randn(p.shape)
    return teacher, lora


def gap(a, b, name, ref):
    """max |a - b| (a float32, b float64). The weights after the AdamW step leave out the
    entries whose gradient is below DETERMINED: Adam's first step moves a weight by
    lr g / (|g| + eps) whatever |g| is, so where g is within float32 noise of 0 (the key biases'
    is 0 in exact arithmetic: softmax ignores a constant added to every key) its sign, and the
    step, are noise; the C suite bounds those through its gradient tolerance instead."""
    d = (a.double() - b.double()).abs()
    for part in ("gen", "fake"):
        if name.startswith(part + ".after.") and part + ".grad." + name[len(part) + 7:] in ref:
            d[ref[part + ".grad." + name[len(part) + 7:]].abs() < DETERMINED] = 0
    return d.max().item() if d.numel() else 0.0


DETERMINED = 1e-4


def gaps(low, ref):  # {quantity: max |low - ref|}, parameters grouped as "<prefix>*"
    groups = {}
    for name, v in ref.items():
        group = name
        for prefix in ("gen.grad.", "gen.after.", "fake.grad.", "fake.after."):
            if name.startswith(prefix):
                group = prefix + "*"
        groups[group] = max(groups.get(group, 0.0), gap(low[name], v, name, ref))
    for part in ("gen", "fake"):  # gradients relative to each tensor's largest entry
        groups[part + ".grad.* / max|g|"] = max(
            (low[n].double() - v).abs().max().item() / v.abs().max().item()
            for n, v in ref.items() if n.startswith(part + ".grad."))
    return groups


def write_fixture(path):
    torch.set_default_dtype(torch.float32)
    stream_seed = pick_stream_seed()
    draws, offset = distiller_draws(stream_seed)
    teacher, lora = random_weights()
    ref = run(torch.float64, teacher, lora, draws)
    stored = {k: v.float() for k, v in ref.items()}
    chained = gaps(run(torch.float32, teacher, lora, draws), ref)
    staged = gaps(run(torch.float32, teacher, lora, draws, fed=stored), ref)

    print(f"stream seed {stream_seed} (offset after the step {offset}): y {draws['y'].tolist()}, "
          f"k {draws['k'].tolist()}, cfg {[round(x, 4) for x in draws['cfg'].tolist()]}")
    print(f"t_dmd {draws['t_dmd'].tolist()}\nt_fake {draws['t_fake'].tolist()}")
    print(f"dmd loss {ref['dmd.loss'].item():.6g}, gen grad norm {ref['gen.grad_norm'].item():.6g}, "
          f"fake loss {ref['fake.loss'].item():.6g}, fake grad norm "
          f"{ref['fake.grad_norm'].item():.6g}")
    print("max |float32 - float64| per quantity: chained (each stage from float32's own "
          "results, as distiller_step), staged (each stage from the stored values, as the C "
          "suite's composed cases); max |value|:")
    for g in chained:
        size = max((ref[n].double().abs().max().item() for n in ref
                    if n == g or (g.endswith("*") and n.startswith(g[:-1]))), default=float("nan"))
        print(f"  {g:26s} {chained[g]:9.3g} {staged[g]:9.3g}   ({size:.3g})")
    for part in ("gen", "fake"):
        grads = [v for n, v in ref.items() if n.startswith(part + ".grad.")]
        loose = sum(int(((g.abs() < DETERMINED) & (g != 0)).sum()) for g in grads)
        print(f"  ({part}.after.* leaves out {loose} of {sum(g.numel() for g in grads)} entries "
              f"with 0 < |g| < {DETERMINED:g})")

    tensors = {}
    tensors.update(teacher)
    tensors.update(lora)
    tensors.update({f"draw.{k}": v for k, v in draws.items()})
    tensors.update(stored)
    metadata = {"model_config": dmdr_config_json(FIXTURE_CONFIG),
                "distill": json.dumps(SETTINGS),
                "stream_seed": str(stream_seed), "stream_offset_after": str(offset),
                "sample_seed": str(SAMPLE_SEED),
                "generator": "tools/torch/dmd_step_reference.py --write-fixture",
                "torch_version": torch.__version__,
                "f32_gap": json.dumps({
                    "chained": {g: float(f"{v:.3g}") for g, v in chained.items()},
                    "staged": {g: float(f"{v:.3g}") for g, v in staged.items()}})}
    save_safetensors(path, tensors, metadata)
    print(f"wrote {path}: {len(tensors)} tensors, "
          f"{sum(t.numel() for t in tensors.values())} values")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-fixture", metavar="PATH", required=True)
    args = ap.parse_args()
    write_fixture(args.write_fixture)


if __name__ == "__main__":
    main()
