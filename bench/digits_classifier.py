"""The small digits classifier whose feature space the benchmarks use for a Frechet distance (an 8x8 "FID").

    python bench/digits_classifier.py            # trains it once: bench/digits_classifier.pt (+ results JSON)

Data: scikit-learn's 8x8 digits scaled to [-1, 1] exactly as the generated train.py does (images / 8 - 1),
shape (1, 8, 8), split once with a fixed permutation (seed 0) into 1437 training and 360 held-out images.
The generative models train on the training split; metrics compare their samples with the held-out split.

Network: conv 3x3 (16) - SiLU - conv 3x3 stride 2 (32) - SiLU - linear 512 -> 64 - SiLU (the features) -
linear 64 -> 10. Adam, 40 epochs, batch 64, trained on the training split only, seed 0.

Also importable: ``digits_split()``, ``load_classifier()``, ``digit_metrics(samples, reference)``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, log, machine, set_threads, write_json

WEIGHTS = Path(__file__).resolve().parent / "digits_classifier.pt"
SPLIT_SEED, N_TEST = 0, 360


def digits_split():
    """(train_images, train_labels, test_images, test_labels); images (n, 1, 8, 8) float64 in [-1, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images.astype(np.float64) / 8.0 - 1.0)[:, None]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    test, train = order[:N_TEST], order[N_TEST:]
    return images[train], digits.target[train], images[test], digits.target[test]


class DigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.SiLU(),
        )
        self.head = nn.Linear(64, 10)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def load_classifier() -> DigitsNet:
    if not WEIGHTS.exists():
        raise SystemExit(f"{WEIGHTS} is missing: run python bench/digits_classifier.py first")
    net = DigitsNet()
    net.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True)["state_dict"])
    return net.eval()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID's formula)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(linalg.sqrtm(cov_a @ cov_b))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


@torch.no_grad()
def digit_metrics(samples: np.ndarray, reference: np.ndarray, net: DigitsNet | None = None) -> dict:
    """Frechet distance in the classifier's 64-d feature space to ``reference`` and label entropies (nats).

    Samples are clipped to [-1, 1] (the data range) first. ``label_entropy`` = H(mean_x p(y|x)): diversity of
    the predicted classes (ln 10 = 2.303 for uniform classes); ``conditional_entropy`` = mean_x H(p(y|x)):
    how undecided the classifier is per sample (low for recognisable digits).
    """
    net = net or load_classifier()
    samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1, 1)
    x = torch.from_numpy(samples.reshape(-1, 1, 8, 8)).float()
    r = torch.from_numpy(reference.reshape(-1, 1, 8, 8)).float()
    feats, ref_feats = net.features(x), net.features(r)
    probs = torch.softmax(net.head(feats), dim=1).numpy()
    marginal = probs.mean(0)
    return {
        "fd": frechet_distance(feats.numpy().astype(np.float64), ref_feats.numpy().astype(np.float64)),
        "label_entropy": float(-(marginal * np.log(marginal + 1e-12)).sum()),
        "conditional_entropy": float(-(probs * np.log(probs + 1e-12)).sum(1).mean()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    set_threads(1)
    info = machine(1)
    torch.manual_seed(args.seed)
    train_x, train_y, test_x, test_y = digits_split()
    x, y = torch.from_numpy(train_x).float(), torch.from_numpy(train_y).long()
    net = DigitsNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 64):
            batch = order[i : i + 64]
            loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if (epoch + 1) % 10 == 0:
            log(f"epoch {epoch + 1}/{args.epochs} loss {loss.item():.4f}")
    net.eval()
    with torch.no_grad():
        accuracy = float((net(torch.from_numpy(test_x).float()).argmax(1).numpy() == test_y).mean())
    tmp = WEIGHTS.with_name(WEIGHTS.name + ".tmp")
    torch.save({"state_dict": net.state_dict(), "test_accuracy": accuracy, "seed": args.seed,
                "epochs": args.epochs, "split_seed": SPLIT_SEED}, tmp)
    tmp.replace(WEIGHTS)
    floor = digit_metrics(train_x, test_x, net)
    result = {"machine": info, "seed": args.seed, "epochs": args.epochs, "test_accuracy": accuracy,
              "train_s": time.perf_counter() - start, "train_vs_test": floor}
    write_json(RESULTS / "digits_classifier.json", result)
    print(f"digits classifier: held-out accuracy {accuracy:.4f} ({len(test_y)} images), seed {args.seed}, "
          f"{args.epochs} epochs; training split vs held-out: FD {floor['fd']:.3f}, label entropy "
          f"{floor['label_entropy']:.3f}, conditional entropy {floor['conditional_entropy']:.3f}")
    print(f"wrote {WEIGHTS} and {RESULTS / 'digits_classifier.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
