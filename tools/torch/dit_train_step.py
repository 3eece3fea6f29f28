#!/usr/bin/python3
"""PyTorch twin of `dmdr bench`'s train_step: the same DiT, batch, thread count and step.

One step is what dmdr's trainer (tools/cmd_train_teacher.c) and its bench (bench/end_to_end.c)
run: the flow-matching loss (logit-normal t, x_t = (1 - t) x0 + t eps, label dropout 0.1, MSE
against v = eps - x0), backward, gradient-norm clipping at 1 and AdamW. The model is
dit_reference.py's DiT (facebookresearch/DiT), so both sides do the same arithmetic.

Warm-up steps, then timed steps until both a minimum count and a time budget are reached; the
median step time gives images/s (the best is printed beside it). Run with Debian's python3 and
python3-torch:
    /usr/bin/python3 tools/torch/dit_train_step.py --threads 2 --batch 64
    /usr/bin/python3 tools/torch/dit_train_step.py --compare bench.json
--compare reads the train_step object of `dmdr bench --json` (its configuration: img, patch,
dim, depth, heads, batch, threads; and its images_per_s), runs that configuration and prints
both figures and the ratio. bench/vs_torch.sh does both runs in one command.

--device cuda runs the step on the GPU (timed between torch.cuda.synchronize calls), the twin of
`dmdr bench --device cuda`.

--precision bf16 runs the forward and the loss under torch.autocast('cpu', dtype=torch.bfloat16)
(PyTorch's mixed precision: the GEMMs in bf16 through oneDNN, fp32 weights, gradients and AdamW
state), the twin of dmdr's --precision bf16; --compare then reads train_step_bf16.
"""
import contextlib
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import DiT  # noqa: E402 (the path is set just above)

# The small preset of tools/config.c (model and training settings the step depends on).
SMALL = dict(img=28, in_channels=1, patch=4, dim=192, depth=6, heads=3, mlp=768, classes=10,
             batch=64)
LR, CLIP, LABEL_DROPOUT = 3e-4, 1.0, 0.1


def make_step(model, opt, x0, y, null_label, precision):
    params = [p for p in model.parameters() if p.requires_grad]
    dev = x0.device

    def autocast():
        if precision == "bf16":
            return torch.autocast(dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():  # one training step, as dmdr's flow_matching_loss + adamw_step
        n = x0.shape[0]
        t = torch.sigmoid(torch.randn(n, device=dev))
        eps = torch.randn_like(x0)
        y_in = torch.where(torch.rand(n, device=dev) <= LABEL_DROPOUT,
                           torch.full_like(y, null_label), y)
        x_t = x0 + t.view(n, 1, 1, 1) * (eps - x0)
        with autocast():
            loss = torch.nn.functional.mse_loss(model(x_t, t, y_in).float(), eps - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()

    return step


def measure(cfg, threads, warmup, min_steps, budget, precision, device="cpu"):
    """-> sorted step times (s). On a GPU each step is timed between synchronisations, so the
    time is the device's, not the launch queue's."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = DiT(image_size=cfg["img"], in_channels=cfg["in_channels"], patch=cfg["patch"],
                hidden=cfg["dim"], depth=cfg["depth"], heads=cfg["heads"],
                mlp_ratio=cfg["mlp"] / cfg["dim"], num_classes=cfg["classes"]).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR,
                            weight_decay=0.0)
    b, c, s = cfg["batch"], cfg["in_channels"], cfg["img"]
    x0 = torch.rand(b, c, s, s, device=device) * 2 - 1
    y = torch.arange(b, device=device) % cfg["classes"]
    step = make_step(model, opt, x0, y, cfg["classes"], precision)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times, start = [], time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)


def config_from_json(path, key):  # -> (configuration, dmdr's train_step object)
    try:
        with open(path) as f:
            step = json.load(f)[key]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{path}: no {key} object from `dmdr bench --json` ({e})")
    cfg = dict(SMALL)
    for k in cfg:
        if k in step:
            cfg[k] = int(step[k])
    return cfg, step


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in SMALL.items():
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="fp32, or bf16 autocast (default fp32)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where the step runs (cuda: timed between synchronisations)")
    ap.add_argument("--tf32", action="store_true",
                    help="cuda: fp32 GEMMs on TF32 tensor cores (dmdr: DMDR_TF32=1)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--steps", type=int, default=8, help="at least this many timed steps")
    ap.add_argument("--budget", type=float, default=4.0,
                    help="and at least this many seconds of them (default 4)")
    ap.add_argument("--compare", metavar="BENCH_JSON",
                    help="run the train_step configuration of this `dmdr bench --json` file "
                         "and print both figures and the ratio")
    args = ap.parse_args()

    cfg = {k: getattr(args, k) for k in SMALL}
    threads, dmdr = args.threads, None
    key = "train_step" + ("_bf16" if args.precision == "bf16" else "")
    if args.compare:
        cfg, dmdr = config_from_json(args.compare, key)
        threads = int(dmdr.get("threads", threads))
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: PyTorch sees no CUDA device")
    if args.device == "cuda" and args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True  # as dmdr's DMDR_TF32=1
    times = measure(cfg, threads, args.warmup, args.steps, args.budget, args.precision,
                    args.device)
    median = statistics.median(times)
    wait = os.environ.get("OMP_WAIT_POLICY", "default")
    where = (torch.cuda.get_device_name() if args.device == "cuda"
             else platform.processor() or platform.machine())
    print(f"PyTorch {torch.__version__} on {where}, "
          f"{threads} threads, OMP_WAIT_POLICY {wait}: DiT img {cfg['img']} patch {cfg['patch']} "
          f"dim {cfg['dim']} depth {cfg['depth']} heads {cfg['heads']}, batch {cfg['batch']}, "
          f"{args.precision}")
    print(f"torch {key}: {cfg['batch'] / median:.2f} images/s (median of {len(times)} "
          f"steps: {median:.4f} s; best {times[0]:.4f} s, {cfg['batch'] / times[0]:.2f} images/s)")
    if dmdr:
        ratio = dmdr["images_per_s"] / (cfg["batch"] / median)
        print(f"dmdr  {key}: {dmdr['images_per_s']:.2f} images/s (median of "
              f"{int(dmdr.get('calls', 0))} steps: {dmdr['seconds']:.4f} s; best "
              f"{dmdr['seconds_best']:.4f} s)")
        print(f"dmdr / torch: {ratio:.2f}x images/s")


if __name__ == "__main__":
    main()
