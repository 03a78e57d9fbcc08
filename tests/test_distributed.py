"""Data-parallel training (minigrad.distributed): N ranks reproduce one.

Each case launches ``mpiexec -n N`` (the venv's MPICH) on tests/distributed_worker.py as a
subprocess under a timeout, one BLAS/OpenMP/Numba thread per rank, and compares what rank 0
saved with the one-rank run of the same global batches: an MLP in float64 within 1e-12, a tiny
BERT fine-tuned by the one ``fit`` in float32 within 1e-5. Skipped, with the reason, when the
``[dist]`` extra (mpi4py, mpich) is not installed.
"""

import os
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
def test_a_rank_that_raises_stops_every_rank(tmp_path):
    result = launch(2, "mlp", str(tmp_path / "x.npz"), "--fail-rank", "1", timeout=60)
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr
    assert not (tmp_path / "x.npz").exists()


@needs_mpi
def test_a_different_model_on_one_rank_is_refused_at_wrap_time_on_every_rank(tmp_path):
    result = launch(3, "mismatch", str(tmp_path / "x.npz"), timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "WorldError" in line]
    assert sorted(line.split(":")[0] for line in lines) == ["rank 0", "rank 1", "rank 2"]
    assert "parameter 0 is '0.weight' (16, 5) float64 on rank 0 but '0.weight' (17, 5) " \
           "float64 on rank 2" in lines[0]


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
