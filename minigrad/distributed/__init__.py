"""Data-parallel training over MPI (and NCCL on GPUs): when one machine is not enough.

N copies of the model, one per process (a *rank*), each on its own slice of every batch; after
each backward the ranks average their gradients, so every copy takes the same step as one
process on the whole batch would. The pieces, with PyTorch's names:

- :mod:`.comm`: the collectives over mpi4py: :func:`init`, :func:`rank`, :func:`world_size`,
  :func:`barrier`, :func:`all_reduce`, :func:`broadcast`, :func:`all_gather` on arrays (NumPy
  through MPI; CuPy through NCCL, or MPI with host staging);
- :class:`DistributedDataParallel`: wrap a model, and gradients are averaged during backward,
  in buckets that overlap the rest of backward;
- :class:`DistributedSampler`: each rank a disjoint shard of the data, reshuffled each epoch.

minigrad invents no networking: MPI starts the processes (``mpiexec -n 4 ...``) and moves the
bytes. It needs the optional extra: ``pip install 'minigrad[dist]'`` (mpi4py and MPICH).
"""

try:
    import mpi4py  # noqa: F401
except ImportError as exc:  # the extra is optional: say how to get it
    raise ImportError(
        "minigrad.distributed needs mpi4py and an MPI library: pip install 'minigrad[dist]' "
        "(or pip install mpi4py mpich), then launch with mpiexec -n N ..."
    ) from exc

from minigrad.distributed.comm import (
    Work,
    WorldError,
    abort,
    all_gather,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    device_backend,
    iall_reduce,
    init,
    is_main_process,
    rank,
    world_size,
)
from minigrad.distributed.ddp import DistributedDataParallel
from minigrad.distributed.sampler import DistributedSampler

__all__ = [
    "DistributedDataParallel", "DistributedSampler", "Work", "WorldError", "abort",
    "all_gather", "all_gather_object", "all_reduce", "barrier", "broadcast", "device_backend",
    "iall_reduce", "init", "is_main_process", "rank", "world_size",
]
