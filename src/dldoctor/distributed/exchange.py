"""Bring every rank's record to rank 0, and rank 0's exit code back to the others.

**Why the launcher's store, and not a collective.** ``torch.distributed.gather_object`` needs the
script's process group alive and every rank inside the same call: a script that has already called
``destroy_process_group`` (it ended by itself), a rank that stopped one step later than another, or a
rank that raised, would leave rank 0 blocked in the collective for the group's whole timeout (30 min).
torch's elastic launcher (``torchrun``) instead hosts a c10d ``TCPStore`` in its agent for the whole
life of the workers and tells them where it is (``MASTER_ADDR``/``MASTER_PORT``, with
``TORCHELASTIC_USE_AGENT_STORE=True``: the store ``init_process_group("env://")`` itself connects to).
Each rank connects a client of its own to it, writes its record under a key of its own, and rank 0
waits for the keys with a timeout of our choosing: no transport of dldoctor's, no collective the
script could be caught in, and it works before, during and after the script's process group.
When the launcher did not host the store (a group started another way), the script's default group's
store is used while the group exists; without either, rank 0 reports every rank's record as missing.

Keys live under ``dldoctor/<run id>/<restart count>/`` so that a restarted group does not read a
previous attempt's records.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
from typing import Any

from dldoctor.distributed import RankEnv

#: Seconds rank 0 waits for the other ranks' records after its own loop stopped.
GATHER_TIMEOUT_S = float(os.environ.get("DLDOCTOR_GATHER_TIMEOUT_S", "120"))
#: Seconds the other ranks wait for rank 0's exit code (rank 0 runs every check meanwhile).
EXIT_TIMEOUT_S = float(os.environ.get("DLDOCTOR_EXIT_TIMEOUT_S", "3600"))
#: Seconds rank 0 waits for the others to read its exit code before it exits itself.
ACK_TIMEOUT_S = 10.0


def _prefix() -> str:
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return f"dldoctor/{run_id}/{restart}/"


def connect(timeout_s: float = 30.0) -> Any:
    """A client of the launcher's store (or the default group's store); None when there is neither."""
    import torch.distributed as dist

    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        try:
            return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                 timeout=datetime.timedelta(seconds=timeout_s))
        except (KeyError, ValueError, RuntimeError):
            pass
    try:
        if dist.is_available() and dist.is_initialized():
            return dist.distributed_c10d._get_default_store()
    except (RuntimeError, AttributeError):
        pass
    return None


class Exchange:
    """One rank's side of the exchange (see the module doc)."""

    def __init__(self, env: RankEnv, store: Any = None) -> None:
        self.env = env
        self.store = store if store is not None else connect()
        self.prefix = _prefix()

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _wait(self, keys: list[str], timeout_s: float) -> bool:
        try:
            self.store.wait(keys, datetime.timedelta(seconds=timeout_s))
            return True
        except Exception:  # a timeout is a DistStoreError (a RuntimeError); so is a closed store
            return False

    def gather(self, record: dict[str, Any], timeout_s: float | None = None) -> list[dict[str, Any]] | None:
        """Send this rank's record; on rank 0, return every rank's, in rank order (a rank whose record did
        not come within the timeout gets ``{"rank": r, "missing": reason}``); None on the other ranks."""
        env = self.env
        if self.store is None:
            if not env.leader:
                return None
            return [record] + [{"rank": r, "missing": "no store to exchange records through (the group was not "
                                                      "started by torchrun)"} for r in range(1, env.world_size)]
        self.store.set(self._key(f"record/{env.rank}"), json.dumps(record, default=str).encode())
        if not env.leader:
            return None
        timeout = GATHER_TIMEOUT_S if timeout_s is None else timeout_s
        out = [record]
        deadline_missing = False
        for r in range(1, env.world_size):
            key = self._key(f"record/{r}")
            if deadline_missing and not self._check(key):
                out.append({"rank": r, "missing": f"no record within {timeout:g} s"})
                continue
            if not self._wait([key], timeout):
                deadline_missing = True
                out.append({"rank": r, "missing": f"no record within {timeout:g} s"})
                continue
            try:
                out.append(json.loads(bytes(self.store.get(key)).decode()))
            except (ValueError, RuntimeError) as exc:
                out.append({"rank": r, "missing": f"unreadable record: {exc}"})
        return out

    def _check(self, key: str) -> bool:
        try:
            return bool(self.store.check([key]))
        except RuntimeError:
            return False

    def announce(self) -> None:
        """Say where this rank runs (host and process id), for :meth:`publish_exit`."""
        if self.store is None:
            return
        with contextlib.suppress(RuntimeError):
            self.store.set(self._key(f"pid/{self.env.rank}"), f"{socket.gethostname()} {os.getpid()}".encode())

    def leave(self) -> None:
        """Say that this rank is leaving before rank 0's exit code (a hung group: see :mod:`.watchdog`)."""
        if self.store is not None:
            with contextlib.suppress(RuntimeError):
                self.store.set(self._key(f"gone/{self.env.rank}"), b"1")

    def publish_exit(self, code: int) -> None:
        """Rank 0: tell the others its exit code, and wait (briefly) until they have read it.

        A rank that has not read it by then is stuck (in a collective its peers left, in its own loop):
        the launcher would wait for it forever, so rank 0 ends it (SIGTERM) when it runs on this host.
        """
        if self.store is None or not self.env.leader:
            return
        try:
            self.store.set(self._key("exit"), str(int(code)).encode())
        except RuntimeError:
            return
        for r in range(1, self.env.world_size):
            if self._check(self._key(f"gone/{r}")) or self._wait([self._key(f"ack/{r}")], ACK_TIMEOUT_S):
                continue
            self._end(r)

    def _end(self, rank: int) -> None:
        if not self._check(self._key(f"pid/{rank}")):
            return
        try:
            host, pid = bytes(self.store.get(self._key(f"pid/{rank}"))).decode().split()
            if host == socket.gethostname() and int(pid) != os.getpid():
                os.kill(int(pid), signal.SIGTERM)
        except (ValueError, RuntimeError, OSError):
            pass

    def wait_exit(self, timeout_s: float | None = None) -> int | None:
        """The other ranks: rank 0's exit code (None: none came within the timeout)."""
        if self.store is None:
            return None
        if not self._wait([self._key("exit")], EXIT_TIMEOUT_S if timeout_s is None else timeout_s):
            return None
        try:
            code = int(bytes(self.store.get(self._key("exit"))).decode())
            self.store.set(self._key(f"ack/{self.env.rank}"), b"1")
        except (ValueError, RuntimeError):
            return None
        return code


_CURRENT: dict[RankEnv, Exchange] = {}


def exchange_for(env: RankEnv) -> Exchange:
    """This process's exchange (connected once: the records and the exit code go through the same one)."""
    if env not in _CURRENT:
        _CURRENT.clear()
        _CURRENT[env] = Exchange(env)
    return _CURRENT[env]



class _Done:
    """What an ``async_op=True`` collective returns here: already complete."""

    def wait(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


def _local(name: str) -> Any:
    """``torch.distributed.<name>`` as it behaves in a group of one (this rank alone)."""

    def collective(*args: Any, **kwargs: Any) -> Any:
        if name == "all_gather" and len(args) >= 2:
            for out in args[0]:
                out.copy_(args[1])
        elif name == "all_gather_into_tensor" and len(args) >= 2:
            out, inp = args[0], args[1]
            out.copy_(inp.reshape(1, *inp.shape).expand(out.numel() // max(inp.numel(), 1), *inp.shape)
                      .reshape(out.shape))
        elif name not in ("all_reduce", "broadcast", "reduce", "barrier", "monitored_barrier"):
            raise RuntimeError(f"torch.distributed.{name} in dldoctor's own (single-process) run of the model")
        return _Done() if kwargs.get("async_op") else None

    collective.__name__ = name
    return collective


#: The collectives replaced, on rank 0, once the watched loop has stopped.
COLLECTIVES = ("all_reduce", "broadcast", "reduce", "barrier", "monitored_barrier", "all_gather",
               "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "all_to_all",
               "all_to_all_single", "gather", "scatter", "all_gather_object", "broadcast_object_list",
               "gather_object", "scatter_object_list")


def release_group() -> None:
    """After the watched loop stopped and the records are exchanged: collectives of a group of one.

    dldoctor's own runs (the staged checks, on rank 0 alone) are single-process: a collective in them (a
    synchronised batch norm's all_reduce in the model's forward) would wait forever for ranks that are
    not there. From here on this process's collectives act as in a group of this rank alone (all_reduce,
    broadcast, reduce and barrier leave the tensors as they are, all_gather copies this rank's tensor),
    and the others raise at once, so that the check that met one says it could not finish. The process
    only runs dldoctor's checks afterwards (the script was stopped), so the replacement is not undone.
    Modules that hold a process group (a synchronised batch norm's ``process_group``) are deep-copied
    sharing it, as the handle it is, instead of failing to pickle.
    """
    import copy

    import torch.distributed as dist

    for name in ("ProcessGroup", "ProcessGroupGloo", "ProcessGroupNCCL", "Backend"):
        cls = getattr(dist, name, None) or getattr(dist.distributed_c10d, name, None)
        if isinstance(cls, type):
            copy._deepcopy_dispatch[cls] = copy._deepcopy_atomic  # type: ignore[attr-defined]
    for name in COLLECTIVES:
        for owner in (dist, dist.distributed_c10d):
            if hasattr(owner, name):
                setattr(owner, name, _local(name))
