"""Does greedy pre-training help, and how: the experiment of Erhan et al. (2010), "Why does
unsupervised pre-training help deep learning?", on any labelled data set.

For every depth d and seed s, two networks with the first d hidden sizes are trained from the same
seed (so the same shuffling and the same random draws elsewhere): one pre-trained greedily as
denoising autoencoders then fine-tuned, one fine-tuned from its random initialisation, with the
same fine-tuning budget (epochs, batch size, learning rate). Each run records

- ``test_error``: the fraction of held-out samples misclassified (generalisation), and
- ``train_loss``: the mean cross-entropy over the last fine-tuning epoch (optimisation):

a lower test error at an equal or higher training loss points to regularisation, a lower training
loss to better optimisation, the two explanations the paper weighs.
"""
import csv
from collections import defaultdict
from operator import index

import numpy as np

from fastdl.models import StackedAutoencoder
from fastdl.training import _progress_bar

ARMS = ("pretrained", "random")
CSV_COLUMNS = ("depth", "init", "seed", "test_error", "train_loss")


def pretraining_experiment(X_train, y_train, X_test, y_test, *, hidden=(256, 256, 256), depths=(1, 2, 3),
                           seeds=5, activation="relu", corruption=("mask", 0.2), pretrain_epochs=10,
                           epochs=30, batch_size=32, lr=1e-3, progress=False):
    """Run both arms for every depth in ``depths`` (a depth-d network has hidden sizes
    ``hidden[:d]``) and seed in ``range(seeds)``. Returns one dict per run, keyed by
    :data:`CSV_COLUMNS`."""
    seeds = index(seeds)
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    depths = [index(d) for d in depths]
    if not depths or min(depths) < 1 or max(depths) > len(hidden):
        raise ValueError(f"depths must be between 1 and {len(hidden)} (the number of hidden sizes), got {depths}")
    n_classes = len(np.unique(y_train))
    runs = []
    bar = _progress_bar(progress, len(depths) * seeds * len(ARMS), unit="network")
    for depth in depths:
        for seed in range(seeds):
            for arm in ARMS:
                net = StackedAutoencoder([X_train.shape[1], *hidden[:depth]], n_classes, activation=activation,
                                         corruption=corruption, seed=seed)
                history = net.fit(X_train, y_train, pretrain=arm == "pretrained", pretrain_epochs=pretrain_epochs,
                                  pretrain_lr=lr, epochs=epochs, lr=lr, batch_size=batch_size)
                runs.append({"depth": depth, "init": arm, "seed": seed, "test_error": 1.0 - net.score(X_test, y_test),
                             "train_loss": history["loss"][-1]})
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()
    return runs


def summarize(runs):
    """{(depth, init): {"n": runs, "test_error": (mean, sd), "train_loss": (mean, sd)}}, sd the
    sample standard deviation (ddof=1; 0 for a single seed)."""
    groups = defaultdict(list)
    for run in runs:
        groups[run["depth"], run["init"]].append(run)
    summary = {}
    for key, group in sorted(groups.items()):
        summary[key] = {"n": len(group)}
        for metric in ("test_error", "train_loss"):
            values = [run[metric] for run in group]
            summary[key][metric] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
    return summary


def write_csv(runs, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(runs)


def plot(summary, path):
    """Test error and training loss against depth, mean ± sd over the seeds, both arms (matplotlib)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    depths = sorted({depth for depth, _ in summary})
    for offset, arm in zip((-0.05, 0.05), ARMS):
        for ax, metric, scale in zip(axes, ("test_error", "train_loss"), (100, 1)):
            mean, sd = np.array([summary[depth, arm][metric] for depth in depths]).T * scale
            ax.errorbar(np.array(depths) + offset, mean, yerr=sd, fmt="o-", capsize=4, label=arm)
    n = next(iter(summary.values()))["n"]
    axes[0].set(title=f"test error (mean ± sd over {n} seeds)", xlabel="hidden layers", ylabel="%")
    axes[1].set(title="training loss, last fine-tuning epoch", xlabel="hidden layers", ylabel="cross-entropy",
                yscale="log")
    for ax in axes:
        ax.set_xticks(depths)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
