"""Distributed runs: script mode as one rank of a ``torchrun`` group, and the ranks' records brought together.

- :func:`rank_env` reads the launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``): torch's
  elastic launcher (``torchrun``, ``torch.distributed.run``) sets it in every rank it starts. Nothing here
  imports torch, so the CLI can ask it before anything heavy is loaded.
- :mod:`.rank_record` watches what the ddp checks need on each rank (batch fingerprints, parameter and
  buffer checksums, the sampler and its epochs, batch-norm layers, the DDP wrapper), fed by the script
  watcher.
- :mod:`.exchange` brings every rank's record to rank 0, and rank 0's exit code back to the others,
  through the launcher's own c10d store (see its docstring for why the store and not a collective).
- :mod:`.launch` starts ``dldoctor run ... --nproc-per-node N`` under ``torch.distributed.run``.

The package sits in the ``loading`` layer: the watcher (``loading.script``) uses it, the runner and the
CLI call it.
"""

from __future__ import annotations

import dataclasses
import os

#: Environment variable the launcher (``dldoctor run --nproc-per-node N``) gives each rank: a file where
#: rank 0 writes its exit code; every rank then exits 0 and the launcher exits with that code.
EXIT_FILE_ENV = "DLDOCTOR_RANK0_EXIT_FILE"
#: Environment variable naming what the report's ``target`` is when the ranks run dldoctor's own loop
#: (a spec's ``distributed`` key: the ranks run ``-m dldoctor.distributed.spec_loop``, the user named the spec).
REPORT_TARGET_ENV = "DLDOCTOR_REPORT_TARGET"


@dataclasses.dataclass(frozen=True)
class RankEnv:
    """This process's place in a group started by torch's elastic launcher."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def leader(self) -> bool:
        """Rank 0: the one that runs the checks and writes the report."""
        return self.rank == 0


def rank_env(environ: dict[str, str] | None = None) -> RankEnv | None:
    """The group this process is one rank of, from ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; None when it is
    not in one (no such variables, a world of one, or values that are not numbers in range)."""
    env = os.environ if environ is None else environ
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        return None
    if world < 2 or not 0 <= rank < world:
        return None
    return RankEnv(rank, world, local)
