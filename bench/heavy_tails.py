"""A/B of the ve path's training recipe for heavy-tailed kernels (issue 10): tail radius x loss weight.

    python bench/heavy_tails.py                                    # PFGM, fractional, Yukawa m=0.1, diffusion
    python bench/heavy_tails.py --entries pfgm --variants inf:velocity,1.5:output --datasets moons

Each variant is the generated module's own VelocityModel(tail_radius=R) trained with
flow_matching_loss(loss_weight=W) (model.py: ``inf:velocity`` is the recipe before issue 10, ``1.5:output`` the
default), with the loop, network, budget and sampler of bench/quality.py's small budget (1000 steps, batch 256,
mlp-s, Heun in sigma), one seed; EDM (bench/methods.py) is trained alongside as the reference. Metric: sliced
Wasserstein-1 of 1000 samples to held-out data at Heun NFE 50 and 20, and the geometric mean over the data sets.
Writes bench/results/heavy_tails_ab.json and .md. About 10 s per model on one core.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C
import methods as M
import quality as Q

DEFAULT_ENTRIES = ("pfgm", "fractional", "yukawa-light", "diffusion")
DEFAULT_VARIANTS = ("inf:velocity", "inf:pfgmpp", "3:velocity", "3:output", "2:output", "1.5:output")
NFES = (50, 20)


class Recipe(M.Generated):
    """A generated module trained with a given tail radius and loss weight (model.py's options)."""

    def __init__(self, entry: str, module, tail_radius: float, loss_weight: str):
        super().__init__(f"{entry}@{tail_radius:g}:{loss_weight}", f"{entry} R={tail_radius:g} {loss_weight}", module)
        self.tail_radius, self.loss_weight = tail_radius, loss_weight

    def make_model(self, stats, backbone_config):
        train, model = self.module.train, self.module.model
        process = train.make_process(train.data_statistics(stats["samples"]), torch.float32)
        return model.VelocityModel(process, model.build_backbone(backbone_config), stats["sigma_data"],
                                   tail_radius=self.tail_radius)

    def loss(self, model, y, generator):
        return self.module.model.flow_matching_loss(model, model.process, y, generator=generator,
                                                    loss_weight=self.loss_weight)


def parse_variant(text: str) -> tuple[float, str]:
    radius, _, weight = text.partition(":")
    return float(radius), weight


def run(args) -> dict:
    C.set_threads(args.threads)
    info = C.machine(args.threads)
    builds = C.build_all(args.entries)
    modules = {e: C.load_module(b["dir"]) for e, b in builds.items() if b["ok"]}
    some = next(iter(modules.values()))
    methods = [Recipe(e, modules[e], *parse_variant(v)) for e in args.entries if e in modules for v in args.variants]
    methods.append(M.EDM(some.model.build_backbone))
    net = M.backbone_configs("mlp-s", [2])
    config = M.TrainConfig(steps=args.steps, batch=256)
    rows = []
    for dataset in args.datasets:
        train_set, held_out, fresh = Q.load_sets(some.train.load_data, dataset, args.seed, 1000)
        for method in methods:
            start = time.perf_counter()
            model, train_info = M.train(method, train_set, net, config, args.seed)
            row = {"method": method.name, "dataset": dataset, "final_loss": train_info["final_loss"]}
            for nfe in NFES:
                samples = M.sample(method, model, len(fresh), "heun", nfe, seed=50_000 + args.seed)
                row[f"sw_heun{nfe}"] = Q.metrics(dataset, samples, held_out)["sw"]
            rows.append(row)
            C.log(f"{method.name} on {dataset}: sw heun50 {row['sw_heun50']:.4g}, heun20 {row['sw_heun20']:.4g}, "
                  f"loss {row['final_loss']:.4g} ({time.perf_counter() - start:.0f} s)")
    return {"info": info, "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
            "rows": rows}


def tables(data) -> str:
    rows = data["rows"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    names = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"machine: {C.machine_line(data['info'])}", f"settings: {data['settings']}", ""]
    for nfe in NFES:
        header = ["recipe (entry@tail radius:loss weight)", *datasets, "geometric mean"]
        body = []
        for name in names:
            values = [next((r[f"sw_heun{nfe}"] for r in rows if r["method"] == name and r["dataset"] == d), math.nan)
                      for d in datasets]
            finite = [v for v in values if math.isfinite(v) and v > 0]
            mean = math.exp(sum(map(math.log, finite)) / len(finite)) if len(finite) == len(values) else math.nan
            body.append([name, *(C.fmt(v) for v in values), C.fmt(mean)])
        lines += [f"**sliced Wasserstein-1 at Heun NFE {nfe}** (one seed; lower is better)", "",
                  C.markdown_table(header, body), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=lambda s: tuple(s.split(",")), default=DEFAULT_ENTRIES)
    parser.add_argument("--variants", type=lambda s: tuple(s.split(",")), default=DEFAULT_VARIANTS,
                        help="comma-separated TAIL_RADIUS:LOSS_WEIGHT (inf:velocity is the recipe before)")
    parser.add_argument("--datasets", type=lambda s: tuple(s.split(",")), default=Q.TOYS)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="heavy_tails_ab", help="results/OUT.json and .md")
    args = parser.parse_args(argv)
    data = run(args)
    C.write_json(C.RESULTS / f"{args.out}.json", data)
    text = tables(data)
    C.write_text(C.RESULTS / f"{args.out}.md", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
