"""What watching a training script recorded: plain data, one record per optimizer step.

The watcher (:mod:`dldoctor.loading.script.watch`) fills these in while the user's own
loop runs; the watched-loop checks judge them, and :mod:`dldoctor.loading.script.to_spec`
builds the spec for the staged checks from them. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class StepRecord:
    """One ``optimizer.step()`` of the user's loop, as seen from inside it.

    Attributes:
        index: 0-based count of the steps of all optimizers.
        optimizer: which optimizer stepped (index into ``WatchedLoop.optimizers``).
        backwards: ``backward()`` calls since that optimizer's previous step.
        fresh: whether its parameters' gradients were all None or zero just before one of
            those calls, i.e. reset since its previous step (None: no backward call since
            then, or its first step).
        grads_at_step: parameters of that optimizer holding a non-zero gradient when it
            stepped (None: not read at this step; the first 32 steps of each optimizer
            are read, then one in 4), and ``held``: how many it holds (trainable ones).
        loss: the value of the last scalar ``backward()`` was called on (None: none).
        training: ``module.training`` of the trained module in its forward calls of this
            step (None: it was not called).
        lr: the learning rate of each parameter group when it stepped.
        grad_norm: the global L2 norm of that optimizer's gradients when it stepped (None:
            no gradient, or not read).
    """

    index: int
    optimizer: int
    backwards: int
    fresh: bool | None
    grads_at_step: int | None
    held: int
    loss: float | None
    training: bool | None
    lr: tuple[float, ...]
    grad_norm: float | None


@dataclasses.dataclass
class NoGradPass:
    """Forward calls of the trained module with gradients disabled (an evaluation pass).

    Attributes:
        after_step: how many optimizer steps had been taken when it began.
        calls: forward calls of the module in the pass.
        training: how many of those ran in training mode.
    """

    after_step: int
    calls: int = 0
    training: int = 0


@dataclasses.dataclass
class OptimizerInfo:
    """An optimizer the loop stepped: its class, hyper-parameters and parameters."""

    class_name: str
    module: str
    defaults: dict[str, Any]
    groups: list[dict[str, Any]]
    """Each parameter group's hyper-parameters (without ``params``), in order."""
    params: int
    """Trainable parameter tensors it holds."""
    steps: int = 0


@dataclasses.dataclass
class WatchedLoop:
    """Everything the watcher saw of one script's training loop.

    Attributes:
        script: how the user named the script (``train.py``, ``-m pkg.train``).
        argv: the script's ``sys.argv``.
        steps: one record per optimizer step, in order.
        no_grad_passes: the trained module's forward calls under ``no_grad``, by pass.
        optimizers: the optimizers that stepped, in the order they first did.
        stopped: ``budget`` (dldoctor stopped the script at its step budget), ``finished``
            (the script ended by itself), or ``raised`` (it raised after training began).
        error: the script's exception line when ``stopped`` is ``raised``.
        model_name: the trained module's class name ("" if none was found).
        unheld: names of the trained module's trainable parameters that no optimizer holds.
        foreign: trainable parameters an optimizer holds that are not the trained
            module's (an optimizer built over another instance).
        never_grad: names of parameters the first optimizer holds that never got a
            gradient in any watched step.
        backward_line, step_line, loader_line: the user's ``file:line`` of the first
            ``backward()``, ``optimizer.step()`` and training-loader iteration ("" if unseen).
        scheduler_steps: LR scheduler ``step()`` calls, as the optimizer step count at each.
        scheduler_name: the class name of the first scheduler that stepped.
        train_batches_per_epoch: batches the training loader yields per pass (None: no
            DataLoader, or its length is unknown).
        epochs_started: how many times the training loader was iterated from the start.
        epoch_starts: the optimizer step count at each of those iterations after the first
            (where the second, third... epoch began).
        dropout_or_norm: whether the trained module holds dropout or batch-norm layers
            (which behave differently in train and eval mode).
        backwards: ``backward()`` calls watched in all.
        resources: the first optimizer's steps timed and their memory read (a
            ``probes.resources.monitor.ResourceRecord``: data wait, compute, memory in use),
            from the end of one step to the end of the next; intervals with an evaluation
            pass in them are left out. None when fewer than two steps were taken.
        monitored_steps: for each step of ``resources``, the index in ``steps`` of the
            step that ended its interval.
        notes: what could not be captured exactly (said in the report).
        ranks: in a distributed run, on rank 0, every rank's record in rank order (plain dicts, see
            ``dldoctor.distributed.rank_record``; a rank whose record did not come has ``missing``);
            empty otherwise.
        hang: in a distributed run whose ranks hung (``stopped == "hang"``), the watchdog's verdict:
            every rank's state (where it waits, its stack; see ``dldoctor.distributed.watchdog``).
    """

    script: str
    argv: list[str]
    steps: list[StepRecord] = dataclasses.field(default_factory=list)
    no_grad_passes: list[NoGradPass] = dataclasses.field(default_factory=list)
    optimizers: list[OptimizerInfo] = dataclasses.field(default_factory=list)
    stopped: str = "finished"
    error: str = ""
    model_name: str = ""
    unheld: list[str] = dataclasses.field(default_factory=list)
    foreign: int = 0
    never_grad: list[str] = dataclasses.field(default_factory=list)
    backward_line: str = ""
    step_line: str = ""
    loader_line: str = ""
    scheduler_steps: list[int] = dataclasses.field(default_factory=list)
    scheduler_name: str = ""
    train_batches_per_epoch: int | None = None
    epochs_started: int = 0
    epoch_starts: list[int] = dataclasses.field(default_factory=list)
    dropout_or_norm: bool = False
    backwards: int = 0
    resources: Any = None
    monitored_steps: list[int] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    ranks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    hang: dict[str, Any] | None = None

    @property
    def losses(self) -> list[float]:
        """The loss of each step of the first optimizer, in order (steps without one left out)."""
        return [s.loss for s in self.steps if s.optimizer == 0 and s.loss is not None]

    def summary(self) -> dict[str, Any]:
        """What the JSON report says about the watched loop."""
        first = self.optimizers[0] if self.optimizers else None
        return {
            "script": self.script,
            "argv": list(self.argv),
            "steps_watched": len(self.steps),
            "stopped": self.stopped,
            "error": self.error,
            "model": self.model_name,
            "optimizers": [f"{o.class_name}({', '.join(f'{k}={v}' for k, v in o.groups[0].items())})"
                           if o.groups else o.class_name for o in self.optimizers],
            "optimizer": first.class_name if first else "",
            "scheduler": self.scheduler_name,
            "evaluation_passes": len(self.no_grad_passes),
            "backward_line": self.backward_line,
            "step_line": self.step_line,
            "notes": list(self.notes),
        }
