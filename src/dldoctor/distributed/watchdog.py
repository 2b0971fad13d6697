"""A per-rank watchdog that tells a hung group from a slow one, and ends the hang with every rank's stack.

A collective (``all_reduce``, ``barrier``, DistributedDataParallel's gradient all-reduce inside
``backward()``) returns only when every rank of the group calls it. When one rank takes another code
path, the others wait in it until the group's timeout (30 minutes by default), silently.

Each rank runs a :class:`Watchdog` thread beside its script. Every :data:`POLL_S` seconds it reads the
main thread's Python stack; a stack that has not changed for ``hang_s`` seconds while its innermost
torch frame is a collective of ``torch.distributed`` or autograd's backward is *waiting*. Each rank
publishes its state (waiting or not, for how long, where; or ended) to the launcher's store
(:mod:`.exchange`). Rank 0's watchdog declares a hang when no rank is making progress and the ranks
wait at different places: two ranks waiting at different lines or in different collectives, or ranks
waiting while another has ended its loop. A rank that only computes for long (a checkpoint, an
evaluation) is not waiting in a collective, and ranks that wait at the same call are waiting for each
other to finish it: neither is a hang here.

On a hang every rank's stack is in the verdict (the store key ``hang``). The other ranks then send
their records, as at the end of a watched loop, and exit (status 0: rank 0 owns the exit code), which
closes their connections: the collective rank 0 waits in fails (gloo raises "Connection closed by
peer"), its script raises, and rank 0 diagnoses as after any script that raised, with the hang as the
finding. Where the backend does not fail on a closed peer, rank 0's watchdog aborts the group.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dldoctor.distributed import RankEnv

#: Seconds between two readings of the main thread's stack.
POLL_S = 0.5
#: Seconds rank 0 waits for its own script to fail once the other ranks have left, before aborting
#: the process group.
UNBLOCK_S = 15.0
#: Frames of each rank's stack kept in the verdict (the innermost ones).
KEPT_FRAMES = 12

def _torch_root() -> str:
    import torch

    return str(Path(torch.__file__).resolve().parent)


def where_waiting(frames: list[traceback.FrameSummary], torch_root: str) -> str:
    """The collective a stack waits in ("barrier", "all_reduce", "backward"...), or "" when it waits in
    none: the innermost frame of ``torch/distributed`` (its function), or autograd's backward."""
    for frame in reversed(frames):
        path = str(Path(frame.filename).resolve()) if frame.filename else ""
        if not path.startswith(torch_root):
            continue
        relative = path[len(torch_root):].replace(os.sep, "/")
        if relative.startswith("/distributed/") and "/elastic/" not in relative:
            return frame.name
        if relative.startswith("/autograd/") and frame.name in ("backward", "_engine_run_backward"):
            return "backward"
    return ""


def user_line(frames: list[traceback.FrameSummary], roots: tuple[Path, ...]) -> str:
    """``file.py:line (function)`` of the innermost frame under the user's folders ("" when none)."""
    for frame in reversed(frames):
        try:
            path = Path(frame.filename).resolve()
        except (OSError, ValueError):
            continue
        if any(root in path.parents for root in roots):
            return f"{path.name}:{frame.lineno} ({frame.name})"
    return ""


class Watchdog:
    """One rank's watchdog thread (see the module doc)."""

    def __init__(self, env: RankEnv, store: Any, prefix: str, hang_s: float, roots: tuple[Path, ...],
                 on_hang: Callable[[dict[str, Any]], None], leave: Callable[[], None]) -> None:
        self.env = env
        self.store = store
        self.prefix = prefix
        self.hang_s = hang_s
        self.roots = roots
        self.on_hang = on_hang  # this rank's part once the hang is declared (record it; send the record)
        self.leave = leave  # the other ranks: exit now
        self.main = threading.main_thread().ident
        self.ended = False
        self.verdict: dict[str, Any] | None = None
        self._declared: float | None = None  # when rank 0 declared the hang (monotonic seconds)
        self._aborted = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dldoctor-rank-watchdog", daemon=True)
        self._torch_root = _torch_root()

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def mark_ended(self) -> None:
        """The rank's watched loop is over (its script ended, raised or was stopped)."""
        self.ended = True

    # -- the thread ------------------------------------------------------------------------------------
    def _state(self, frames: list[traceback.FrameSummary], still_s: float) -> dict[str, Any]:
        waiting = where_waiting(frames, self._torch_root)
        return {"rank": self.env.rank, "ended": self.ended, "still_s": round(still_s, 1),
                "waiting": waiting if still_s >= self.hang_s else "",
                "collective": waiting, "line": user_line(frames, self.roots), "pid": os.getpid(),
                "stack": [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames[-KEPT_FRAMES:]]}

    def _stack(self) -> list[types.FrameType]:
        """The main thread's frames, innermost first."""
        frame = sys._current_frames().get(self.main) if self.main is not None else None
        frames = []
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        return frames

    def _frames(self) -> list[traceback.FrameSummary]:
        """The main thread's stack, outermost first, without its source lines (reading them would load
        every file on the stack into ``linecache``: memory the leak checks would see grow)."""
        return [traceback.FrameSummary(f.f_code.co_filename, f.f_lineno, f.f_code.co_name, lookup_line=False)
                for f in reversed(self._stack())]

    def _signature(self) -> tuple[tuple[int, int], ...]:
        """Where the main thread is, cheaply: each frame's code and line."""
        return tuple((id(f.f_code), f.f_lineno) for f in self._stack())

    def _run(self) -> None:
        """Read the stack every :data:`POLL_S` s. A rank writes its state to the store only when it changes
        (working, waiting, ended), and rank 0 reads the others' only while it is not working itself (a
        hang needs every rank waiting or ended): a healthy run's steps see no store traffic."""
        signature: tuple[Any, ...] | None = None
        since = time.monotonic()
        status: tuple[Any, ...] | None = None
        first = True  # the first reading at once, before the script: its one-time allocations come first
        while first or not self._stop.wait(POLL_S):
            first = False
            now = time.monotonic()
            current = self._signature()
            if current != signature:
                signature, since = current, now
            still = now - since
            frames = self._frames() if self.ended or still >= self.hang_s else None
            waiting = where_waiting(frames, self._torch_root) if frames is not None and not self.ended else ""
            now_status = ("ended",) if self.ended else ("waiting", waiting, signature) if waiting else ("working",)
            try:
                if now_status != status:
                    state = self._state(frames or [], still)
                    self.store.set(self.prefix + f"hang/state/{self.env.rank}", json.dumps(state).encode())
                    status = now_status
                if self.env.leader:
                    if status != ("working",):
                        self._judge()
                elif status != ("working",) and self.store.check([self.prefix + "hang"]):
                    self._follow()
                    return
            except Exception:  # the store went away (the launcher ended the group): nothing left to watch
                return
            if self.verdict is not None and self.env.leader:
                self._unblock(now)

    def _states(self) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for rank in range(self.env.world_size):
            key = self.prefix + f"hang/state/{rank}"
            out.append(json.loads(bytes(self.store.get(key)).decode()) if self.store.check([key]) else None)
        return out

    def _judge(self) -> None:
        if self.verdict is not None:
            return
        states = self._states()
        if any(s is None for s in states):
            return
        verdict = judge_hang([s for s in states if s is not None])
        if verdict is None:
            return
        self.verdict = {**verdict, "declared": time.time()}
        self.on_hang(self.verdict)
        self.store.set(self.prefix + "hang", json.dumps(self.verdict).encode())
        self._declared = time.monotonic()

    def _follow(self) -> None:
        self.verdict = json.loads(bytes(self.store.get(self.prefix + "hang")).decode())
        if not self.ended:
            self.on_hang(self.verdict)
        self.leave()

    def _unblock(self, now: float) -> None:
        """Rank 0 still waits after the others left: abort the group (a backend that does not fail when its
        peers close their connections)."""
        if self._declared is None or now - self._declared < UNBLOCK_S or self._aborted:
            return
        self._aborted = True
        with contextlib.suppress(Exception):
            import torch
            import torch.distributed as dist

            group = dist.distributed_c10d._get_default_group()
            for backend in ("cuda", "cpu"):
                with contextlib.suppress(Exception):
                    group._get_backend(torch.device(backend)).abort()


def judge_hang(states: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A hang: no rank makes progress (each waits in a collective or has ended), at least one waits, and
    they are not all waiting at one place (the same line and collective)."""
    waiting = [s for s in states if s.get("waiting")]
    if not waiting:
        return None
    if any(not s.get("waiting") and not s.get("ended") for s in states):
        return None  # a rank still works (or waits somewhere that is not a collective): not yet
    places = {(s.get("line"), s.get("waiting")) for s in waiting}
    ended = [s["rank"] for s in states if s.get("ended") and not s.get("waiting")]
    if len(places) < 2 and not ended:
        return None
    return {"ranks": states, "ended": ended, "waiting_s": min(float(s.get("still_s", 0)) for s in waiting)}
