"""Data-parallel training (minigrad.distributed): N ranks reproduce one.

Each case launches ``mpiexec -n N`` (the venv's MPICH) on tests/distributed_worker.py as a
subprocess under a timeout, one BLAS/OpenMP/Numba thread per rank, and compares what rank 0
saved with the one-rank run of the same global batches: an MLP in float64 within 1e-12, a tiny
BERT fine-tuned by the one ``fit`` in float32 within 1e-5. Skipped, with the reason, when the
``[dist]`` extra (mpi4py, mpich) is not installed.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("distributed_worker.py")
MPIEXEC = Path(sys.executable).with_name("mpiexec")
ONE_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "NUMBA_NUM_THREADS"), "1")

try:
    import mpi4py  # noqa: F401
    HAVE_MPI = MPIEXEC.exists()
except ImportError:
    HAVE_MPI = False
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs the [dist] extra (pip install "
                               "'minigrad[dist]': mpi4py and mpich, with mpiexec in the venv)")


def launch(ranks: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python worker args``, killed (and failed) after ``timeout`` s."""
    command = [str(MPIEXEC), "-n", str(ranks), sys.executable, str(WORKER), *args]
    env = {**os.environ, **ONE_THREAD}
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpiexec -n {ranks} {' '.join(args)} still ran after {timeout} s: a rank "
                    "hangs")


def train(tmp_path: Path, ranks: int, scenario: str, *options: str) -> dict:
    out = tmp_path / f"{scenario}-{ranks}-{len(list(tmp_path.iterdir()))}.npz"
    result = launch(ranks, scenario, str(out), *options)
    assert result.returncode == 0, result.stdout + result.stderr
    with np.load(out) as saved:
        return dict(saved)


def assert_same_parameters(a: dict, b: dict, atol: float) -> None:
    names = [k for k in a if k not in ("buckets", "step_losses")]
    assert names and sorted(names) == sorted(k for k in b if k not in ("buckets", "step_losses"))
    for name in names:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=atol, err_msg=name)


@needs_mpi
def test_an_mlp_on_2_and_3_ranks_ends_where_1_rank_does_in_float64(tmp_path):
    one = train(tmp_path, 1, "mlp")
    for ranks in (2, 3):
        assert_same_parameters(one, train(tmp_path, ranks, "mlp"), atol=1e-12)


@needs_mpi
def test_a_bucket_per_parameter_gives_what_one_bucket_gives(tmp_path):
    one_bucket = train(tmp_path, 2, "mlp", "--bucket-cap-mb", "25")
    per_parameter = train(tmp_path, 2, "mlp", "--bucket-cap-mb", "0")
    assert int(one_bucket["buckets"]) == 1 and int(per_parameter["buckets"]) == 6
    assert_same_parameters(one_bucket, per_parameter, atol=1e-12)


@needs_mpi
def test_no_sync_accumulation_equals_one_large_batch(tmp_path):
    large = train(tmp_path, 1, "mlp", "--batch", "24")
    accumulated = train(tmp_path, 2, "mlp", "--batch", "24", "--accumulate")
    assert_same_parameters(large, accumulated, atol=1e-12)


@needs_mpi
def test_a_tiny_bert_fine_tuned_by_fit_on_2_ranks_matches_1_rank_in_float32(tmp_path):
    one = train(tmp_path, 1, "bert", "--out-dir", str(tmp_path / "one"))
    two = train(tmp_path, 2, "bert", "--out-dir", str(tmp_path / "two"), "--bucket-cap-mb",
                "0.01")
    assert int(two["buckets"]) > 1  # the all-reduce really overlapped backward in pieces
    assert_same_parameters(one, two, atol=1e-5)
    np.testing.assert_allclose(one["step_losses"], two["step_losses"], rtol=0, atol=1e-5)
    assert (tmp_path / "two" / "history.json").is_file()  # written once, by rank 0


@needs_mpi
def test_a_parameter_some_ranks_leave_unused_is_averaged_with_zeros_and_one_none_use_stays_none(
        tmp_path):
    result = train(tmp_path, 2, "unused")  # the worker asserts the unused layer's grad is None
    np.testing.assert_allclose(result["used"], np.full((2, 3), 4.0))        # ones: 4 rows
    np.testing.assert_allclose(result["rank0_only"], np.full((2, 3), 2.0))  # rank 0's 4, / 2


@needs_mpi
def test_a_rank_that_raises_stops_every_rank(tmp_path):
    result = launch(2, "mlp", str(tmp_path / "x.npz"), "--fail-rank", "1", timeout=60)
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr
    assert not (tmp_path / "x.npz").exists()


@needs_mpi
def test_a_different_model_on_one_rank_is_refused_at_wrap_time_on_every_rank(tmp_path):
    result = launch(3, "mismatch", str(tmp_path / "x.npz"), timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    # the ranks' lines may interleave in mpiexec's output: find each rank's message
    assert sorted(re.findall(r"rank (\d): WorldError", result.stdout)) == ["0", "1", "2"]
    assert result.stdout.count("parameter 0 is '0.weight' (16, 5) float64 on rank 0 but "
                               "'0.weight' (17, 5) float64 on rank 2") == 3


@needs_mpi
def test_ranks_that_read_training_sets_of_different_sizes_are_refused_on_every_rank(tmp_path):
    result = launch(2, "datasize", str(tmp_path / "x.npz"), timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    assert sorted(re.findall(r"rank (\d): WorldError", result.stdout)) == ["0", "1"]
    assert result.stdout.count("the ranks read different training sets: [8, 9] examples") == 2


@needs_mpi
def test_the_sampler_shards_are_disjoint_and_rebuild_each_one_rank_batch():
    from minigrad.data.datasets import batch_indices
    from minigrad.distributed import DistributedSampler

    n, batch, world = 24, 8, 4
    shards = []
    for rank in range(world):
        sampler = DistributedSampler(n, num_replicas=world, rank=rank, seed=5)
        sampler.set_epoch(2)
        shards.append(sampler.indices())
    assert sorted(np.concatenate(shards).tolist()) == list(range(n))
    one_rank = list(batch_indices(n, batch, np.random.default_rng([5, 2])))
    local = batch // world
    for k, rows in enumerate(one_rank):
        together = np.concatenate([s[k * local:(k + 1) * local] for s in shards])
        assert sorted(together.tolist()) == sorted(rows.tolist())
    again = DistributedSampler(n, num_replicas=world, rank=0, seed=5)
    again.set_epoch(3)
    assert not np.array_equal(again.indices(), shards[0])  # a new order each epoch
    padded = DistributedSampler(10, num_replicas=4, rank=3)
    assert len(padded) == len(padded.indices()) == 3  # wrapped around to 12 rows


def test_importing_minigrad_distributed_without_mpi4py_says_how_to_install_it():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "try:\n    import minigrad.distributed\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).parent).stdout
    assert "pip install 'minigrad[dist]'" in out


GPU_SMOKE = """
import numpy as np
import minigrad as mg
from minigrad import backend, distributed as dist
from minigrad.distributed import comm
dist.init("cuda")
cp = backend.cupy()
print("path", dist.device_backend())
for staged in (False, True):
    nccl, comm._state["nccl"] = comm._state["nccl"], None if staged else comm._state["nccl"]
    a = cp.arange(6, dtype=cp.float32) + dist.rank()
    dist.all_reduce(a)
    assert np.allclose(cp.asnumpy(a), np.arange(6) * dist.world_size()
                       + sum(range(dist.world_size())))
    b = cp.full(3, float(dist.rank()), dtype=cp.float64)
    dist.broadcast(b, src=0)
    assert np.allclose(cp.asnumpy(b), 0.0)
    g = dist.all_gather(cp.ones(2, dtype=cp.float32) * dist.rank())
    assert g.shape == (dist.world_size(), 2)
    comm._state["nccl"] = nccl
mg.manual_seed(0)
model = dist.DistributedDataParallel(mg.nn.Linear(4, 2).to("cuda"))
model(mg.tensor(np.ones((3, 4), dtype=np.float32)).to("cuda")).sum().backward()
assert model.module.weight.grad is not None
print("ok")
"""


@needs_mpi
@pytest.mark.gpu
def test_the_gpu_path_nccl_and_host_staging_on_one_rank(tmp_path):
    """NCCL refuses two ranks on one GPU: a one-GPU machine smoke-tests it with one rank."""
    script = tmp_path / "gpu_smoke.py"
    script.write_text(GPU_SMOKE)
    result = subprocess.run([str(MPIEXEC), "-n", "1", sys.executable, str(script)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, **ONE_THREAD})
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr


# --- the command: mpiexec -n N minigrad finetune ----------------------------------------------
FINETUNE = ["finetune", "--dataset", "rotten-tomatoes", "--model", "bert-tiny",
            "--max-train-examples", "64", "--batch-size", "8", "--max-length", "32", "--epochs",
            "1", "--dropout", "0", "--examples", "0"]


def minigrad_command(ranks: int, *args: str) -> subprocess.CompletedProcess:
    command = [str(MPIEXEC), "-n", str(ranks), str(Path(sys.executable).with_name("minigrad")),
               *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=300,
                              env={**os.environ, **ONE_THREAD})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} still ran after 300 s: a rank hangs")


@needs_mpi
def test_finetune_on_2_ranks_writes_the_checkpoint_that_1_rank_writes(tmp_path):
    from safetensors.numpy import load_file

    runs, metrics = {}, {}
    for ranks in (1, 2):
        result = minigrad_command(ranks, *FINETUNE, "--out", str(tmp_path / f"run{ranks}"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("saved to") == 1  # rank 0 alone reports and writes
        runs[ranks] = load_file(tmp_path / f"run{ranks}" / "model.safetensors")
        metrics[ranks] = json.loads((tmp_path / f"run{ranks}" / "metrics.json").read_text())
    assert runs[1].keys() == runs[2].keys()
    for name, weights in runs[1].items():
        np.testing.assert_allclose(runs[2][name], weights, rtol=0, atol=1e-5, err_msg=name)
    # validation and test scored on half the rows by each rank, gathered: the same metrics
    for key in ("accuracy", "macro_f1", "test_loss"):
        assert metrics[2][key] == pytest.approx(metrics[1][key], abs=1e-5), key
    epoch1, epoch2 = metrics[1]["history"]["epochs"][0], metrics[2]["history"]["epochs"][0]
    assert epoch1.keys() == epoch2.keys()
    for key, value in epoch1.items():
        assert epoch2[key] == pytest.approx(value, abs=1e-5), key


@needs_mpi
def test_a_global_batch_that_does_not_divide_among_the_ranks_is_refused_by_every_rank(tmp_path):
    result = minigrad_command(3, *FINETUNE, "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.strip() == ("minigrad finetune: error: --batch-size 8 is the global "
                                     "batch and must divide evenly among the 3 ranks; use a "
                                     "multiple of 3")
    assert not (tmp_path / "run").exists()


def test_dropout_sets_every_rate_of_the_model_and_its_config():
    from minigrad import nn
    from minigrad.finetune import FinetuneConfig, set_dropout
    from minigrad.models.bert import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig.named("bert-tiny", vocab_size=30))
    set_dropout(model, 0.0)
    rates = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(rates) > 4 and set(rates) == {0.0}
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.0
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        FinetuneConfig(dropout=1.5).check()


def test_under_mpiexec_without_mpi4py_the_command_says_how_to_install_it(tmp_path):
    """What each rank sees when mpiexec (PMI_SIZE set) starts minigrad in an environment
    without mpi4py: one line, exit status 1, no traceback, nothing written."""
    fake = tmp_path / "site" / "mpi4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'mpi4py'\")\n")
    env = {**os.environ, "PMI_SIZE": "2", "PMI_RANK": "0",
           "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([str(Path(sys.executable).with_name("minigrad")), *FINETUNE,
                             "--out", str(tmp_path / "run")], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "minigrad finetune: error: minigrad.distributed needs mpi4py" in result.stderr
    assert "pip install 'minigrad[dist]'" in result.stderr
    assert not (tmp_path / "run").exists()
