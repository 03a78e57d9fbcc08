"""Data-parallel training on this machine, and a model of it on many (issue 18).

    python benchmarks/distributed.py            # about 3 minutes on 2 cores
    python benchmarks/distributed.py --fast     # CI's smoke run: 2 steps, short sequences

1. **Throughput**: a bert-mini fine-tuning step (rotten-tomatoes reviews, global batch 16,
   128 tokens, AdamW) run by 1 rank with 2 BLAS/OpenMP/Numba threads, then by 2 ranks with 1
   thread each (``mpiexec -n 2``, :class:`minigrad.distributed.DistributedDataParallel`, its
   default 25 MB buckets, then 4 MB ones: bert-mini's largest gradient, the word embeddings,
   is the last one backward finishes). Each rank reports, per step, its forward, its
   backward's compute, and the all-reduce time left over after backward (``exposed``); from
   each bucket's start and the moment it was seen finished, the share of backward during which
   an all-reduce was in flight (the overlap) and a timeline of the last step (tutorial 12 draws it).
   Each configuration runs ``--repeat`` times (default 2), alternated, and the fastest run is
   kept: on a shared machine the load changes from one run to the next.
2. **Bytes**: each rank hands MPI the whole gradient (``size`` bytes) once per step. What
   travels is the algorithm's business: a ring all-reduce (reduce-scatter then all-gather over
   point-to-point messages, written out here) sends 2(N−1)/N·size bytes per rank, which the run
   counts at each ``Sendrecv`` for N = 2, 3, 4 and checks against ``MPI_Allreduce``'s result.
3. **Scaling model**: from the measured compute of one step on one rank (forward, backward,
   update, each rank keeping the per-rank batch: weak scaling) and an α–β network model,
   ``T_allreduce(N) = 2(N−1)·α + 2(N−1)/N · size/β``, the step time and speedup on 1-64 nodes
   at 10 and 100 Gbit/s, without overlap (``T = T_compute + T_allreduce``) and with perfect
   overlap of backward (``T = T_forward + max(T_backward, T_allreduce) + T_update``).

Writes ``benchmarks/results/distributed.{json,md,png}`` and ``distributed_timeline.json``.
The machine is shared: the load average is recorded, and the figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MPIEXEC = Path(sys.executable).with_name("mpiexec")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
NETWORKS = {"10 Gbit/s": {"alpha_s": 20e-6, "beta_bytes_per_s": 10e9 / 8},
            "100 Gbit/s": {"alpha_s": 5e-6, "beta_bytes_per_s": 100e9 / 8}}
NODES = [1, 2, 4, 8, 16, 32, 64]


# --- the worker: one rank's steps ---------------------------------------------------------------
def worker_step(args: argparse.Namespace) -> None:
    import minigrad as mg
    from minigrad import distributed as dist
    from minigrad.classifier import Classifier, encode, forward, load_model
    from minigrad.data import datasets
    from minigrad.optim import AdamW

    dist.init()
    n_ranks, rank = dist.world_size(), dist.rank()
    reviews = datasets.load_rotten_tomatoes()
    names = datasets.class_names(reviews)
    rows = args.batch * (args.steps + args.warmup)
    reviews = datasets.random_split(reviews, [rows, len(reviews) - rows], 0)[0]
    mg.manual_seed(0)
    model, tokenizer = load_model("bert-mini", datasets.SEQUENCE, len(names))
    classifier = Classifier(model, tokenizer, names, datasets.SEQUENCE, args.seq)
    encoded = encode(classifier, reviews, {n: i for i, n in enumerate(names)})
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb)
    optimizer = AdamW(ddp.parameters(), lr=1e-4)
    sampler = dist.DistributedSampler(len(encoded), seed=0)
    mine = sampler.indices()
    local = args.batch // n_ranks
    records = []
    for step in range(args.warmup + args.steps):
        batch = encoded.batch(mine[step * local:(step + 1) * local])
        dist.barrier()  # every rank starts the step together
        t0 = time.perf_counter()
        loss = forward(ddp, batch).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        t3 = time.perf_counter()
        line = ddp.timeline
        compute_end = line["backward_end"]
        in_flight = _covered([(s - t1, min(d, compute_end) - t1) for s, d, _ in line["buckets"]])
        records.append({"forward_s": t1 - t0, "backward_compute_s": compute_end - t1,
                        "exposed_allreduce_s": line["end"] - compute_end,
                        "backward_s": t2 - t1, "update_s": t3 - t2, "step_s": t3 - t0,
                        "overlap_share": in_flight / max(compute_end - t1, 1e-12)})
        if step == args.warmup + args.steps - 1:
            timeline = {"backward_start": 0.0, "backward_end": compute_end - t1,
                        "end": line["end"] - t1,
                        "buckets": [{"start": s - t1, "done": d - t1, "bytes": b}
                                    for s, d, b in line["buckets"]]}
    size = sum(p.data.nbytes for p in ddp.parameters() if p.requires_grad)
    measured = records[args.warmup:]
    summary = {key: float(np.median([r[key] for r in measured])) for key in measured[0]}
    everyone = dist.all_gather_object(summary)
    if rank == 0:
        result = {"ranks": n_ranks, "threads": int(os.environ.get("OMP_NUM_THREADS", "0")),
                  "global_batch": args.batch, "seq": args.seq, "steps": args.steps,
                  "gradient_bytes": size, "buckets": len(ddp.buckets),
                  "per_rank": everyone, "step_s": max(s["step_s"] for s in everyone),
                  "examples_per_s": args.batch / max(s["step_s"] for s in everyone),
                  "timeline_rank0": timeline}
        Path(args.worker_out).write_text(json.dumps(result, indent=1))


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of intervals (those ending before they start count nothing)."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if start > reach:
            total, reach = total + end - start, end
        elif end > reach:
            total, reach = total + end - reach, end
    return total


def ring_all_reduce(comm: Any, x: np.ndarray) -> tuple[np.ndarray, int]:
    """The ring all-reduce (tutorial 12) over MPI point-to-point messages: N − 1 steps of
    reduce-scatter, each rank passing one chunk to its right neighbour and adding the one from
    its left; then N − 1 steps of all-gather passing the finished chunks on. Returns the sum
    and the bytes this rank sent."""
    n, r = comm.Get_size(), comm.Get_rank()
    chunks = [c.copy() for c in np.array_split(x, n)]
    right, left = (r + 1) % n, (r - 1) % n
    sent = 0
    for step in range(n - 1):  # reduce-scatter: chunk (r - step) travels right
        out, into = (r - step) % n, (r - step - 1) % n
        incoming = np.empty_like(chunks[into])
        comm.Sendrecv(chunks[out], dest=right, recvbuf=incoming, source=left)
        sent += chunks[out].nbytes
        chunks[into] += incoming
    for step in range(n - 1):  # all-gather: the finished chunk (r + 1 - step) travels right
        out, into = (r + 1 - step) % n, (r - step) % n
        comm.Sendrecv(chunks[out], dest=right, recvbuf=chunks[into], source=left)
        sent += chunks[out].nbytes
    return np.concatenate(chunks), sent


def worker_bytes(args: argparse.Namespace) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    size_bytes = args.gradient_bytes
    x = np.random.default_rng(comm.Get_rank()).normal(size=size_bytes // 4).astype(np.float32)
    reference = x.copy()
    comm.Allreduce(MPI.IN_PLACE, reference, MPI.SUM)
    t0 = time.perf_counter()
    total, sent = ring_all_reduce(comm, x)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    comm.Allreduce(MPI.IN_PLACE, x.copy(), MPI.SUM)
    mpi_seconds = time.perf_counter() - t0
    sends = comm.gather(sent, root=0)
    error = comm.allreduce(float(np.abs(total - reference).max()), op=MPI.MAX)
    if comm.Get_rank() == 0:
        n = comm.Get_size()
        Path(args.worker_out).write_text(json.dumps({
            "ranks": n, "size_bytes": x.nbytes, "sent_bytes_per_rank": sends,
            "formula_bytes": 2 * (n - 1) / n * x.nbytes, "max_abs_error_vs_mpi": error,
            "ring_seconds": seconds, "mpi_allreduce_seconds": mpi_seconds}))


# --- the driver ---------------------------------------------------------------------------------
def launch(ranks: int, threads: int, worker: str, out: Path, extra: list[str]) -> dict:
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, str(threads))}
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, str(Path(__file__).resolve()),
           "--worker", worker, "--worker-out", str(out), *extra]
    print("$", " ".join(f"{k}={threads}" for k in THREAD_VARS[:1]), " ".join(cmd[:3]), "...",
          " ".join(cmd[5:]), flush=True)
    subprocess.run(cmd, check=True, env=env, timeout=1800)
    return json.loads(out.read_text())


def scaling_model(single: dict, size: int) -> dict:
    """Weak scaling: every node keeps the measured per-rank batch and compute time."""
    f = single["per_rank"][0]
    forward, backward, update = f["forward_s"], f["backward_compute_s"], f["update_s"]
    compute = forward + backward + update
    curves = {}
    for name, net in NETWORKS.items():
        rows = []
        for n in NODES:
            comm = (2 * (n - 1) * net["alpha_s"]
                    + 2 * (n - 1) / n * size / net["beta_bytes_per_s"]) if n > 1 else 0.0
            serial = compute + comm
            overlapped = forward + max(backward, comm) + update
            rows.append({"nodes": n, "allreduce_s": comm, "step_s_no_overlap": serial,
                         "step_s_overlap": overlapped, "speedup_no_overlap": n * compute / serial,
                         "speedup_overlap": n * compute / overlapped})
        curves[name] = {**net, "rows": rows}
    return {"compute_s": compute, "forward_s": forward, "backward_s": backward,
            "update_s": update, "gradient_bytes": size, "networks": curves}


def plot(report: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    model = report["model"]
    ax.plot(NODES, NODES, "k:", label="ideal")
    for (name, net), color in zip(model["networks"].items(), ("C0", "C1"), strict=True):
        rows = net["rows"]
        ax.plot(NODES, [r["speedup_overlap"] for r in rows], "-o", color=color,
                label=f"{name}, all-reduce hidden behind backward")
        ax.plot(NODES, [r["speedup_no_overlap"] for r in rows], "--", color=color,
                label=f"{name}, no overlap")
    ax.set(xscale="log", yscale="log", xlabel="nodes", ylabel="speedup (examples/s vs 1 node)",
           title=f"α–β model: bert-mini step ({model['compute_s']:.2f} s compute, "
                 f"{model['gradient_bytes'] / 2**20:.0f} MiB of gradients)")
    ax.set_xticks(NODES, [str(n) for n in NODES])
    ax.legend(fontsize=8)
    draw_timeline(bx, report["two_ranks_4mb_buckets"]["timeline_rank0"],
                  "rank 0's last step, 2 ranks, 4 MB buckets")
    fig.savefig(path, dpi=100)


def draw_timeline(ax: Any, line: dict, title: str) -> None:
    """Backward's compute as one bar, each bucket's all-reduce below it, from start to seen
    finished (ms from the start of backward)."""
    ax.barh(0, line["backward_end"] * 1e3, color="C2", label="backward (compute)")
    for i, b in enumerate(line["buckets"]):
        ax.barh(i + 1, (b["done"] - b["start"]) * 1e3, left=b["start"] * 1e3, color="C3",
                label="all-reduce of a bucket" if i == 0 else None)
        ax.text(b["done"] * 1e3, i + 1, f" {b['bytes'] / 2**20:.1f} MiB", va="center",
                fontsize=8)
    ax.axvline(line["end"] * 1e3, color="k", ls=":", label="backward() returns")
    ax.set(xlabel="ms since backward started", yticks=range(len(line["buckets"]) + 1),
           yticklabels=["compute"] + [f"bucket {i}" for i in range(len(line["buckets"]))],
           title=title)
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower left")


def markdown(report: dict) -> str:
    one, two = report["one_rank"], report["two_ranks"]
    lines = [
        "# Data-parallel training on this machine (benchmarks/distributed.py)", "",
        f"Command: `{report['command']}`; load average before/after: "
        f"{report['load_before']} / {report['load_after']} (on a 2-core machine the "
        "timings move with the load: compare runs only at a similar load average).", "",
        f"bert-mini fine-tuning step, rotten-tomatoes, global batch {one['global_batch']}, "
        f"{one['seq']} tokens, AdamW, median of {one['steps']} steps, the fastest of "
        f"{report['repeat']} alternated runs of each (every run's step time: "
        f"{ {k: [round(x, 3) for x in v] for k, v in report['step_s_of_every_run'].items()} }):",
        "",
        "| run | step (s) | examples/s | forward (s) | backward compute (s) | all-reduce exposed "
        "after backward (s) | backward time with an all-reduce in flight |",
        "|---|---|---|---|---|---|---|"]
    runs = (("1 rank x 2 threads", one), ("2 ranks x 1 thread", two),
            ("2 ranks x 1 thread, 4 MB buckets", report["two_ranks_4mb_buckets"]),
            ("1 rank x 1 thread (the scaling model's compute)", report["one_rank_one_thread"]))
    for name, run in runs:
        r = run["per_rank"][0]
        lines.append(f"| {name} | {run['step_s']:.3f} | {run['examples_per_s']:.1f} | "
                     f"{r['forward_s']:.3f} | {r['backward_compute_s']:.3f} | "
                     f"{r['exposed_allreduce_s']:.4f} | "
                     f"{'-' if run['ranks'] == 1 else format(r['overlap_share'], '.0%')} |")
    lines += ["", f"Speedup of 2 ranks x 1 thread over 1 rank x 2 threads: "
              f"{one['step_s'] / two['step_s']:.2f}x; over 1 rank x 1 thread: "
              f"{report['one_rank_one_thread']['step_s'] / two['step_s']:.2f}x.", "",
              "Bytes each rank sends per step for the whole gradient "
              f"({report['bytes'][0]['size_bytes']:,} bytes), counted at each Sendrecv of a "
              "ring all-reduce (checked against MPI_Allreduce):", "",
              "| ranks N | sent per rank | 2(N-1)/N * size | max abs error vs MPI_Allreduce |",
              "|---|---|---|---|"]
    for b in report["bytes"]:
        lines.append(f"| {b['ranks']} | {max(b['sent_bytes_per_rank']):,} | "
                     f"{b['formula_bytes']:,.0f} | {b['max_abs_error_vs_mpi']:.1e} |")
    lines += ["", "Scaling model (weak scaling, per-rank batch and compute as measured on one "
              "rank; alpha-beta ring all-reduce):", "",
              "| nodes | " + " | ".join(f"{n} no overlap | {n} overlap"
                                       for n in report["model"]["networks"]) + " |",
              "|---|" + "---|---|" * len(report["model"]["networks"])]
    nets = list(report["model"]["networks"].values())
    for i, n in enumerate(NODES):
        cells = [f"{net['rows'][i]['speedup_no_overlap']:.1f}x | "
                 f"{net['rows'][i]['speedup_overlap']:.1f}x" for net in nets]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "alpha (latency) and beta (bandwidth) per network: " + "; ".join(
        f"{name}: alpha {net['alpha_s'] * 1e6:.0f} us, beta {net['beta_bytes_per_s'] / 1e9:.2f}"
        " GB/s" for name, net in report["model"]["networks"].items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="CI's smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bucket-cap-mb", type=float, default=25.0)
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each configuration, alternated; the fastest is kept")
    parser.add_argument("--worker", choices=["step", "bytes"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--gradient-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "step":
        return worker_step(args)
    if args.worker == "bytes":
        return worker_bytes(args)
    if args.fast:
        args.steps, args.warmup, args.seq, args.repeat = 2, 1, 32, 1
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    step_args = ["--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
                 "--warmup", str(args.warmup), "--bucket-cap-mb", str(args.bucket_cap_mb)]
    runs: dict[str, list[dict]] = {"one": [], "two": [], "small": []}
    for _ in range(args.repeat):  # alternated, the fastest of each kept: the machine is shared
        runs["one"].append(launch(1, 2, "step", args.out / "distributed_one.tmp.json", step_args))
        runs["two"].append(launch(2, 1, "step", args.out / "distributed_two.tmp.json", step_args))
        runs["small"].append(launch(2, 1, "step", args.out / "distributed_small.tmp.json",
                                    [*step_args[:-1], "4"]))
    one, two, small = (min(runs[k], key=lambda r: r["step_s"]) for k in ("one", "two", "small"))
    size = two["gradient_bytes"]
    sent = [launch(n, 1, "bytes", args.out / f"distributed_bytes{n}.tmp.json",
                   ["--gradient-bytes", str(size)]) for n in (2, 3, 4)]
    for tmp in args.out.glob("distributed_*.tmp.json"):
        tmp.unlink()
    single = launch(1, 1, "step", args.out / "distributed_single.tmp.json", step_args)
    (args.out / "distributed_single.tmp.json").unlink()
    report = {"command": "python benchmarks/distributed.py" + (" --fast" if args.fast else ""),
              "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
              "one_rank": one, "two_ranks": two,
              "two_ranks_4mb_buckets": small, "one_rank_one_thread": single, "bytes": sent,
              "model": scaling_model(single, size), "repeat": args.repeat,
              "step_s_of_every_run": {k: [r["step_s"] for r in v] for k, v in runs.items()}}
    (args.out / "distributed.json").write_text(json.dumps(report, indent=1))
    (args.out / "distributed_timeline.json").write_text(
        json.dumps({"25 MB buckets": two["timeline_rank0"],
                    "4 MB buckets": small["timeline_rank0"]}, indent=1))
    (args.out / "distributed.md").write_text(markdown(report))
    plot(report, args.out / "distributed.png")
    print(markdown(report))


if __name__ == "__main__":
    main()
