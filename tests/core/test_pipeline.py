import time

import pytest

from dldoctor.core.check import Check
from dldoctor.core.config import Config, default_config, load_config, merge
from dldoctor.core.context import Context
from dldoctor.core.pipeline import Selection, run_checks
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage
from dldoctor.loading.entrypoint import load_target


class Boom(Check):
    """Always crashes."""
    name = "test-boom"
    stage = Stage.RUN
    emits = ("lr-too-high",)

    def run(self, ctx):
        raise ValueError("kaboom")


class Warns(Check):
    """Always warns."""
    name = "test-warns"
    stage = Stage.OVERFIT
    emits = ("lr-too-low",)
    requires = ("forward_pass",)

    def run(self, ctx):
        return [self.finding("lr-too-low", Severity.WARNING, 0.5)]


class NeedsVal(Check):
    """Needs a validation loader."""
    name = "test-needs-val"
    stage = Stage.EVALUATE
    emits = ("overfitting",)
    requires = ("val_loader",)

    def run(self, ctx):
        return [self.finding("overfitting", Severity.WARNING, 0.5)]


class Slow(Check):
    """Runs past any budget."""
    name = "test-slow"
    stage = Stage.RUN
    emits = ("lr-too-high",)

    def run(self, ctx):
        while True:
            time.sleep(0.01)


@pytest.fixture
def ctx(make_project):
    from tests.conftest import HEALTHY_BODY

    loaded = load_target(str(make_project(HEALTHY_BODY)))
    context = Context(loaded, load_config(), __import__("torch").device("cpu"), seed=0)
    context.prepare()
    return context


def test_a_crashing_check_is_a_result_and_the_run_goes_on(ctx):
    findings, results = run_checks(ctx, [Boom, Warns])
    status = {r.name: r for r in results}
    assert status["test-boom"].status.value == "errored"
    assert "kaboom" in status["test-boom"].reason
    assert status["test-warns"].status.value == "failed"
    assert [f.id for f in findings] == ["check-incomplete", "lr-too-low"]
    incomplete = findings[0]
    assert incomplete.check == "test-boom" and "kaboom" in incomplete.title
    assert "dldoctor's check raised" in incomplete.title  # not the user's code: no user frame
    assert findings[1].stage == "overfit" and findings[1].check == "test-warns"


def test_missing_requirement_skips_with_reason(ctx):
    _, results = run_checks(ctx, [NeedsVal])
    assert results[0].status.value == "skipped"
    assert "val_loader" in results[0].reason


def test_checks_run_in_stage_order(ctx):
    _, results = run_checks(ctx, [NeedsVal, Warns, Boom])
    assert [r.name for r in results] == ["test-boom", "test-warns", "test-needs-val"]


def test_select_and_ignore(ctx):
    _, results = run_checks(ctx, [Boom, Warns], Selection(select=frozenset({"lr-too-low"})))
    assert {r.name: r.status.value for r in results} == {"test-boom": "skipped", "test-warns": "failed"}
    findings, results = run_checks(ctx, [Warns], Selection(ignore=frozenset({"lr-too-low"})))
    assert findings == [] and results[0].status.value == "passed"
    _, results = run_checks(ctx, [Warns], Selection(ignore=frozenset({"test-warns"})))
    assert results[0].status.value == "skipped"


def test_a_check_past_its_budget_is_stopped(ctx):
    values = merge(default_config(), {"run": {"check_timeout_s": 0.3}}, "test")
    ctx.config = Config(values)
    start = time.perf_counter()
    found, results = run_checks(ctx, [Slow])
    assert time.perf_counter() - start < 5
    assert results[0].status.value == "errored" and "safety limit" in results[0].reason
    assert [f.id for f in found] == ["check-incomplete"]


def test_a_check_must_declare_what_it_emits():
    with pytest.raises(TypeError):
        class Bad(Check):
            name = "bad"
            emits = ("not-an-id",)

    class Declared(Check):
        name = "declared"
        emits = ("lr-too-high",)

    with pytest.raises(ValueError, match="lr-too-low"):
        Declared().finding("lr-too-low", "warning", 0.5)
