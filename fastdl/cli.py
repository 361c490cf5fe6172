"""The ``fastdl`` command line: ``fastdl demo``, ``fastdl train DATA --out MODEL`` and
``fastdl experiment pretraining``.

``mpiexec -n 4 fastdl train DATA --out MODEL`` trains data-parallel over the 4 processes
(:mod:`fastdl.distributed`); rank 0 reports and writes the model."""
import argparse
import os
import sys
import time

import numpy as np

from fastdl.distributed import DistributedError


def _corruption(text):
    """'none', 'mask:P' or 'gaussian:SIGMA'."""
    if text == "none":
        return None
    kind, _, level = text.partition(":")
    try:
        return (kind, float(level))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected none, mask:P or gaussian:SIGMA, got {text!r}") from None


def _sizes(text):
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _count(minimum):
    """An argparse type: an int of at least ``minimum``."""
    def parse(text):
        if not text.lstrip("-").isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}, got {text!r}")
        return int(text)

    return parse


def _add_training_options(p, hidden, epochs, pretrain_epochs):
    p.add_argument("--hidden", type=_sizes, default=hidden, help="hidden layer sizes (default %(default)s)")
    p.add_argument("--activation", default="relu", help="hidden activation (default %(default)s)")
    p.add_argument("--corruption", type=_corruption, default=("mask", 0.2),
                   help="denoising corruption: none, mask:P or gaussian:SIGMA (default mask:0.2)")
    p.add_argument("--pretrain-epochs", type=_count(0), default=pretrain_epochs,
                   help="per layer (default %(default)s)")
    p.add_argument("--epochs", type=_count(0), default=epochs, help="fine-tuning epochs (default %(default)s)")
    p.add_argument("--batch-size", type=_count(1), default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default %(default)s)")
    p.add_argument("--threads", type=_count(1), default=None, help="numba and BLAS threads")


def _parser():
    parser = argparse.ArgumentParser(prog="fastdl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="pre-train a stacked denoising autoencoder on the digits, "
                                            "fine-tune it, and compare with random initialization")
    _add_training_options(demo, [256, 128], epochs=20, pretrain_epochs=5)
    demo.add_argument("--seeds", type=_count(1), default=3, help="runs per variant (default %(default)s)")
    demo.add_argument("--plot", metavar="DIR", help="write filters.png and loss_curves.png here (matplotlib)")
    train = commands.add_parser("train", help="train on a .npz or IDX file and save the model")
    train.add_argument("data", help=".npz with X (and y), or an IDX images file")
    train.add_argument("--labels", help="IDX labels file (with IDX images)")
    train.add_argument("--out", required=True, help="where to save the model (.npz)")
    train.add_argument("--test-fraction", type=float, default=0.2, help="held out to report accuracy")
    train.add_argument("--no-pretrain", action="store_true", help="random initialization only")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--progress", action="store_true", help="a progress bar (tqdm)")
    _add_training_options(train, [256, 128], epochs=20, pretrain_epochs=5)
    experiment = commands.add_parser("experiment", help="pre-trained against randomly initialised networks "
                                                        "by depth, over seeds (fastdl.experiments)")
    experiment.add_argument("name", choices=["pretraining"])
    experiment.add_argument("--data", help=".npz with X and y, or an IDX images file (default: the digits)")
    experiment.add_argument("--labels", help="IDX labels file (with IDX images)")
    experiment.add_argument("--test-fraction", type=float, default=0.25, help="held out (default %(default)s)")
    experiment.add_argument("--seeds", type=_count(1), default=5, help="runs per depth and arm (default %(default)s)")
    experiment.add_argument("--depths", type=_sizes, default=[1, 2, 3],
                            help="numbers of hidden layers, each using the first of --hidden (default 1,2,3)")
    experiment.add_argument("--out", default="pretraining-experiment",
                            help="directory for pretraining.csv and pretraining.png (default %(default)s)")
    experiment.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_training_options(experiment, [256, 256, 256], epochs=30, pretrain_epochs=10)
    return parser


def _stack(args, n_inputs, n_outputs, seed):
    from fastdl.models import StackedAutoencoder

    return StackedAutoencoder([n_inputs] + args.hidden, n_outputs, activation=args.activation,
                              corruption=args.corruption, seed=seed)


def _fit(net, X, y, args, pretrain, progress=False, comm=None):
    started = time.perf_counter()
    history = net.fit(X, y, pretrain=pretrain, pretrain_epochs=args.pretrain_epochs, pretrain_lr=args.lr,
                      epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, progress=progress, comm=comm)
    return history, time.perf_counter() - started


def _mean_std(values):
    return f"{100 * np.mean(values):.1f}% ± {100 * np.std(values):.1f}%"


def demo(args):
    from fastdl import get_backend, get_num_threads
    from fastdl.datasets import load_digits, train_test_split

    X, y = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, 0.25, seed=0)
    sizes = "-".join(str(s) for s in [X.shape[1]] + args.hidden + [10])
    print(f"fastdl demo: stacked denoising autoencoder {sizes} ({args.activation}, corruption "
          f"{args.corruption}) on the digits, {len(Xtr)} train / {len(Xte)} test, {args.seeds} seeds, "
          f"{get_num_threads()} threads, {get_backend()} kernels")
    # One short untimed run first: on the numba backend it compiles (or loads from numba's cache)
    # every kernel the demo uses, so the epoch times below measure training, not the JIT.
    started = time.perf_counter()
    warm = argparse.Namespace(**{**vars(args), "epochs": 1, "pretrain_epochs": 1})
    _fit(_stack(warm, X.shape[1], 10, 0), Xtr[:2 * args.batch_size], ytr[:2 * args.batch_size], warm, True)
    how = "compiled or loaded from the cache" if get_backend() == "numba" else "ready"
    print(f"kernels {how} in {time.perf_counter() - started:.2f} s (not part of the timings below)")
    rows = {True: [], False: []}
    keep = {}
    for seed in range(args.seeds):
        for pretrain in (True, False):
            net = _stack(args, X.shape[1], 10, seed)
            history, _ = _fit(net, Xtr, ytr, args, pretrain)
            pre_time = sum(r["time"] for r in net.pretrain_report_) if pretrain else 0.0
            pre_epochs = args.pretrain_epochs * len(args.hidden)
            rows[pretrain].append((net.score(Xte, yte), np.mean(history["time"]),
                                   pre_time / pre_epochs if pretrain and pre_epochs else None))
            if seed == 0:
                keep[pretrain] = (net, history)
    print(f"\n{'':24}{'test accuracy':>16}{'fine-tune s/epoch':>20}{'pre-train s/layer-epoch':>26}")
    for pretrain, label in ((True, "pre-trained + fine-tuned"), (False, "random init + fine-tuned")):
        acc, tune, pre = zip(*rows[pretrain])
        pre_text = f"{np.mean(pre):.4f}" if pretrain else "-"
        print(f"{label:24}{_mean_std(acc):>16}{np.mean(tune):>20.4f}{pre_text:>26}")
    if args.plot:
        _plot(args.plot, keep)
    return 0


def _prepare_plots(directory):
    """Check before training that ``--plot DIR`` can be honoured: matplotlib importable (set to
    its file-only backend) and DIR a writable directory, created if needed."""
    from fastdl import io

    try:
        import matplotlib
    except ImportError:
        raise ValueError("--plot needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--plot: cannot create the directory {directory!r}: {exc.strerror}") from None
    io.check_save_path(os.path.join(directory, "filters.png"))


def _plot(directory, keep):
    import matplotlib.pyplot as plt

    net, _ = keep[True]
    W = net.ops.to_host(net.arena.param("layer0.W"))
    side = int(np.sqrt(W.shape[1]))
    n = min(len(W), 100)
    cols = int(np.ceil(np.sqrt(n)))
    fig, axes = plt.subplots(cols, cols, figsize=(cols, cols), squeeze=False)
    for ax, w in zip(axes.flat, W[:n]):
        ax.imshow(w.reshape(side, -1), cmap="gray")
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("first-layer filters after pre-training and fine-tuning")
    fig.savefig(os.path.join(directory, "filters.png"), dpi=80)
    plt.close(fig)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))  # markers: one epoch is one point
    for report in net.pretrain_report_:
        left.plot(range(1, len(report["loss"]) + 1), report["loss"], ".-", label=f"layer {report['layer']}")
    left.set(title="greedy pre-training (reconstruction loss)", xlabel="epoch", yscale="log")
    left.legend()
    for pretrain, label in ((True, "pre-trained"), (False, "random init")):
        right.plot(keep[pretrain][1]["epoch"], keep[pretrain][1]["loss"], ".-", label=label)
    right.set(title="fine-tuning (cross-entropy)", xlabel="epoch", yscale="log")
    right.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "loss_curves.png"), dpi=80)
    plt.close(fig)
    print(f"wrote {os.path.join(directory, 'filters.png')} and {os.path.join(directory, 'loss_curves.png')}")


def train(args):
    from fastdl import distributed, io
    from fastdl.datasets import load_file, train_test_split
    from fastdl.models import Autoencoder

    comm = distributed.world_from_launcher()  # started by mpiexec: train with the other processes
    root = comm is None or comm.Get_rank() == 0
    with distributed.reported(comm):  # a failure before fit on one rank reaches the others
        if root:
            io.check_save_path(args.out)  # before training, not after
        X, y = load_file(args.data, args.labels)
        if y is None:  # no labels: an autoencoder of the first hidden size
            model = Autoencoder(X.shape[1], args.hidden[0], args.activation, corruption=args.corruption,
                                seed=args.seed)
            model.fit(X, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, progress=args.progress,
                      comm=comm)
        else:
            X, Xte, y, yte = train_test_split(X, y, args.test_fraction, seed=args.seed)
            model = _stack(args, X.shape[1], len(np.unique(y)), args.seed)
            _, seconds = _fit(model, X, y, args, not args.no_pretrain, args.progress, comm)
    if not root:  # every rank holds the same model: rank 0 reports and writes it
        return 0
    where = f" on {comm.Get_size()} processes" if comm else ""
    if y is None:
        print(f"autoencoder {X.shape[1]}-{args.hidden[0]}{where}: reconstruction error "
              f"{model.reconstruction_error(X):.4f} on {len(X)} samples")
    else:
        print(f"trained {len(X)} samples in {seconds:.1f} s{where}; test accuracy "
              f"{100 * model.score(Xte, yte):.2f}% on {len(Xte)} held-out samples")
    io.save(model, args.out)  # atomically: a failed save leaves no partial file
    print(f"saved {args.out}")
    return 0


def experiment(args):
    from fastdl import experiments, get_backend, io
    from fastdl.datasets import load_digits, load_file, train_test_split

    X, y = load_digits() if args.data is None else load_file(args.data, args.labels)
    if y is None:
        raise ValueError(f"{args.data} has no labels: the experiment measures classification error")
    os.makedirs(args.out, exist_ok=True)
    csv_path, plot_path = (os.path.join(args.out, f"pretraining.{ext}") for ext in ("csv", "png"))
    io.check_save_path(csv_path)  # before training, not after
    Xtr, Xte, ytr, yte = train_test_split(X, y, args.test_fraction, seed=0)
    print(f"fastdl experiment pretraining: {args.data or 'the digits'}, {len(Xtr)} train / {len(Xte)} test, "
          f"hidden {'-'.join(map(str, args.hidden))} ({args.activation}, corruption {args.corruption}), depths "
          f"{args.depths}, {args.seeds} seeds, {args.epochs} fine-tuning epochs (pre-trained: "
          f"+{args.pretrain_epochs} per layer first), {get_backend()} kernels")
    runs = experiments.pretraining_experiment(
        Xtr, ytr, Xte, yte, hidden=args.hidden, depths=args.depths, seeds=args.seeds, activation=args.activation,
        corruption=args.corruption, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, progress=not args.no_progress)
    summary = experiments.summarize(runs)
    print(f"\n{'depth':>5}  {'init':12}{'test error':>18}{'training loss':>22}")
    for (depth, arm), row in summary.items():
        (err, err_sd), (loss, loss_sd) = row["test_error"], row["train_loss"]
        print(f"{depth:>5}  {arm:12}{f'{100 * err:.2f}% ± {100 * err_sd:.2f}%':>18}{f'{loss:.4f} ± {loss_sd:.4f}':>22}")
    experiments.write_csv(runs, csv_path)
    try:
        import matplotlib
    except ImportError:
        print(f"wrote {csv_path} (no plot: matplotlib is not installed)")
        return 0
    matplotlib.use("Agg")
    experiments.plot(summary, plot_path)
    print(f"wrote {csv_path} and {plot_path}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.threads is not None:
            from fastdl import set_num_threads

            set_num_threads(args.threads)
        if args.command == "demo" and args.plot:
            _prepare_plots(args.plot)
        return {"demo": demo, "train": train, "experiment": experiment}[args.command](args)
    except (ValueError, TypeError, OSError, DistributedError) as exc:
        print(f"fastdl {args.command}: error: {exc}", file=sys.stderr)
        return 2
