"""One rank of the scenarios tests/test_distributed.py launches with ``mpiexec -n N``.

``python tests/distributed_worker.py SCENARIO OUT [options]``: every rank runs the scenario;
rank 0 writes the final parameters to OUT (an .npz) for the test to compare across world
sizes. Not a test module itself (pytest collects only test_*.py).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad import distributed as dist
from minigrad import nn
from minigrad.classifier import forward
from minigrad.models.bert import BertConfig, BertForSequenceClassification
from minigrad.nn import functional as F
from minigrad.optim import SGD, AdamW
from minigrad.train import TrainConfig, fit


def mlp(hidden: int = 16) -> nn.Module:
    mg.manual_seed(1 + dist.rank())  # different initial weights: the broadcast must fix them
    return nn.Sequential(nn.Linear(5, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 3)).double()


def mlp_data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, 5)), rng.integers(0, 3, size=rows)


def my_rows(batch: np.ndarray) -> np.ndarray:
    """This rank's slice of a global batch of row indices (the sampler's interleaving)."""
    return batch[dist.rank()::dist.world_size()]


def run_mlp(args: argparse.Namespace) -> dict:
    """K SGD steps (momentum) on global batches of --batch rows, each rank on its slice; with
    --accumulate, each step is two micro-batches of half as many, the first under no_sync()."""
    model = dist.DistributedDataParallel(mlp(), bucket_cap_mb=args.bucket_cap_mb)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    per_step = args.batch
    x, y = mlp_data(per_step * args.steps)
    for step in range(args.steps):
        rows = np.arange(step * per_step, (step + 1) * per_step)
        micro = np.split(rows, 2) if args.accumulate else [rows]
        for i, batch in enumerate(micro):
            mine = my_rows(batch)
            loss = F.cross_entropy(model(mg.tensor(x[mine])), y[mine]) / len(micro)
            if i < len(micro) - 1:
                with model.no_sync():
                    loss.backward()
            else:
                loss.backward()
        if args.fail_rank == dist.rank() and step == 1:
            raise RuntimeError(f"rank {dist.rank()} fails on purpose")
        optimizer.step()
        optimizer.zero_grad()
    return {"buckets": np.array(len(model.buckets)),
            **{name: p.numpy() for name, p in model.module.named_parameters()}}


def run_mismatch(args: argparse.Namespace) -> dict:
    """The last rank builds a wider model: every rank must refuse at wrap time."""
    last = dist.rank() == dist.world_size() - 1
    try:
        dist.DistributedDataParallel(mlp(hidden=17 if last else 16))
    except dist.WorldError as exc:
        print(f"rank {dist.rank()}: WorldError: {exc}", flush=True)
        sys.exit(3)
    return {}


def run_datasize(args: argparse.Namespace) -> dict:
    """The last rank reads one training example more: every rank must refuse before training."""
    from minigrad.data.encoding import Encoded
    from minigrad.finetune import FinetuneConfig, _data_parallel

    n = 8 + (dist.rank() == dist.world_size() - 1)
    encoded = Encoded({"input_ids": np.ones((n, 4), dtype=np.int64)})
    try:
        _data_parallel(mlp(), encoded, FinetuneConfig(batch_size=4))
    except dist.WorldError as exc:
        print(f"rank {dist.rank()}: WorldError: {exc}", flush=True)
        sys.exit(3)
    return {}


def run_unused(args: argparse.Namespace) -> dict:
    """A layer only rank 0 uses and one no rank uses: the first gets rank 0's gradient over N
    (the others count zeros), the second keeps grad None, as in one process."""
    mg.manual_seed(0)
    used, rank0_only, unused = (nn.Linear(3, 2).double() for _ in range(3))
    ddp = dist.DistributedDataParallel(nn.ModuleList([used, rank0_only, unused]))
    assert len(ddp.buckets) == 1
    x = mg.tensor(np.ones((4, 3)))
    loss = used(x).sum() + (rank0_only(x).sum() if dist.rank() == 0 else 0.0)
    loss.backward()
    assert unused.weight.grad is None and unused.bias.grad is None
    return {"used": used.weight.grad, "rank0_only": rank0_only.weight.grad,
            "world": np.array(dist.world_size())}


def run_bert(args: argparse.Namespace) -> dict:
    """A tiny BERT, dropout off, float32, fine-tuned by the one fit with a DistributedSampler:
    4 steps of AdamW on global batches of 8, clipped, with history written by rank 0 only."""
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    mg.manual_seed(0)
    model = dist.DistributedDataParallel(BertForSequenceClassification(config),
                                         bucket_cap_mb=args.bucket_cap_mb)
    rng = np.random.default_rng(0)
    n, length = 32, 10
    lengths = rng.integers(3, length + 1, size=n)
    mask = (np.arange(length) < lengths[:, None]).astype(np.int64)
    data = {"input_ids": rng.integers(1, 40, size=(n, length)) * mask,
            "attention_mask": mask, "token_type_ids": np.zeros((n, length), dtype=np.int64),
            "labels": rng.integers(0, 2, size=n)}
    sampler = dist.DistributedSampler(n, seed=0)
    local_batch = 8 // dist.world_size()

    def batches(epoch: int) -> list:
        sampler.set_epoch(epoch)
        rows = sampler.indices()
        return [{k: a[rows[i:i + local_batch]] for k, a in data.items()}
                for i in range(0, len(rows), local_batch)]

    optimizer = AdamW(model.parameters(), lr=1e-3)
    history = fit(model, lambda m, b: forward(m, b).loss, batches, optimizer,
                  TrainConfig(epochs=1, max_grad_norm=1.0, out_dir=args.out_dir, progress=True))
    result = {name: p.numpy() for name, p in model.module.named_parameters()}
    result["buckets"] = np.array(len(model.buckets))
    result["step_losses"] = np.array([s["loss"] for s in history.steps])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["mlp", "mismatch", "bert", "unused",
                                                           "datasize"])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=12, help="the global batch (rows a step)")
    parser.add_argument("--bucket-cap-mb", type=float, default=25.0)
    parser.add_argument("--accumulate", action="store_true")
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--out-dir")
    parser.add_argument("--backend", default="numpy", help="the CPU kernel backend")
    args = parser.parse_args()
    mg.set_backend(args.backend)
    dist.init()
    scenarios = {"mlp": run_mlp, "mismatch": run_mismatch, "bert": run_bert,
                 "unused": run_unused, "datasize": run_datasize}
    result = scenarios[args.scenario](args)
    if dist.rank() == 0:
        np.savez(Path(args.out), **result)


if __name__ == "__main__":
    main()
