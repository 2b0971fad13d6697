"""The memory-model check: the breakdown on every run, out-of-memory when the spec's
batch does not fit the budget, and budget strings."""

import pytest

from dldoctor.checks.running.memory_model import judge
from dldoctor.core.errors import ConfigError
from dldoctor.core.severity import Severity
from dldoctor.probes.resources.memory_model import MemoryModel, RealProbe
from dldoctor.runtime.units import format_bytes, parse_budget
from tests.conftest import HEALTHY_BODY, diagnose_file

CHECK = ("memory-model",)

CNN = """
g = torch.Generator().manual_seed(0)
X = torch.randn(32, 3, 16, 16, generator=g)
y = torch.randint(0, 10, (32,), generator=g)

def dldoctor_spec():
    return {
        "model": lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)),
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3),
        {extra}
    }
"""


def run(path, budget=None, measured=False):
    overrides = (("memory_model.budget", budget),) if budget is not None else ()
    diagnosis = diagnose_file(path, select=CHECK, overrides=overrides)
    result = next(c for c in diagnosis.checks if c.name == "memory-model")
    if measured:
        return diagnosis.diagnoses, result, diagnosis.measurements
    return diagnosis.diagnoses, result


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    from tests.conftest import SPEC_HEADER

    path = tmp_path_factory.mktemp("cnn") / "train.py"
    path.write_text(SPEC_HEADER + CNN.replace("{extra}", ""))
    findings, _, measured = run(path, measured=True)
    assert findings == ()
    return path, {"peak_bytes": measured["memory.peak_bytes"]["value"]}


def test_healthy_model_gets_measurements_not_a_finding(make_project):
    findings, result, measured = run(make_project(HEALTHY_BODY), measured=True)
    assert result.status.value == "passed"
    assert findings == ()  # a model that fits is not an out-of-memory, even as a note
    peak, per_sample, params = (measured[f"memory.{k}"] for k in ("peak_bytes", "peak_bytes_per_sample",
                                                                  "param_bytes"))
    # Net: 8*16 + 16 + 16*2 + 2 = 178 float32 parameters; Adam keeps two more copies and the gradients one.
    assert params["value"] == 178 * 4 and params["unit"] == "B"
    assert peak["value"] >= 4 * params["value"] and peak["better"] == "lower"
    assert 0 < per_sample["value"] < peak["value"] and "measured at batch 16 and 32" in per_sample["title"]
    assert measured["memory.max_batch"]["value"] > 32 and measured["memory.max_batch"]["better"] == "higher"
    assert {m["check"] for m in measured.values()} == {"memory-model"}


def test_batch_that_does_not_fit_the_budget_is_out_of_memory(cnn):
    path, info = cnn
    budget = int(info["peak_bytes"] / 2)
    findings, _ = run(path, str(budget))
    f = findings[0]
    assert (f.id, f.severity) == ("out-of-memory", Severity.ERROR)
    assert f.location == "train_loader"
    rec = f.metrics["recommended_batch"]
    assert 0 < rec < 32 and f"at most ~{rec:,}" in f.title
    assert f.fixes[0].startswith(f"Set the train_loader's batch_size to at most {rec:,}")
    assert "accumulate gradients" in f.fixes[1]
    # The recommended batch keeps the safety margin free; one more sample than the
    # capacity would not fit at all.
    per, fixed = f.metrics["step_bytes_per_sample"], f.metrics["step_fixed_bytes"]
    base = f.metrics["param_bytes"] + f.metrics["optimizer_state_bytes"] + fixed
    assert base + per * rec <= 0.9 * budget
    assert base + per * (f.metrics["max_batch"] + 1) > budget


def test_budget_string_with_units(cnn):
    path, _ = cnn
    findings, _ = run(path, "1KiB")
    assert findings[0].severity is Severity.ERROR and findings[0].metrics["budget_bytes"] == 1024
    findings, _, measured = run(path, "2.5G", measured=True)
    assert findings == () and "2.7 GB budget" in measured["memory.max_batch"]["title"]


def test_batch_within_the_safety_margin_is_a_warning(cnn):
    path, info = cnn
    findings, _ = run(path, str(int(info["peak_bytes"] / 0.95)))
    assert findings[0].severity is Severity.WARNING
    assert "too close to the limit" in findings[0].title


def test_model_too_big_for_any_batch_names_the_largest_layer(make_project):
    path = make_project(CNN.replace("nn.Linear(8, 10)", "nn.Linear(8, 10), nn.Linear(10, 2000)")
                        .replace("randint(0, 10,", "randint(0, 2000,").replace("{extra}", ""))
    findings, _ = run(path, "200kB")  # the last layer alone is 88 kB; with gradients and Adam's state 352 kB
    f = findings[0]
    assert f.severity is Severity.ERROR and f.title.startswith("even one sample needs")
    assert f.location == "model[7]" and f.metrics["max_batch"] == 0
    assert f.fixes[0].startswith("Shrink model[7] (Linear)")


def test_step_that_ran_out_of_memory_is_measured_at_small_batches(make_project):
    body = CNN.replace("{extra}", '"forward": forward,').replace("def dldoctor_spec", """def forward(model, batch):
    if len(batch[0]) > 8:
        raise MemoryError("simulated: the allocator refused")
    return model(batch[0]), batch[1]

def dldoctor_spec""")
    findings, _ = run(make_project(body), "10MB")
    f = findings[0]
    assert f.severity is Severity.ERROR
    assert f.metrics["measured_sizes"] == "1,2"
    assert "ran out of memory" in f.evidence[0]
    assert f.metrics["recommended_batch"] > 0


def test_step_that_ran_out_of_memory_although_it_fits_says_something_else_holds_it(make_project):
    body = CNN.replace("{extra}", '"forward": forward,').replace("def dldoctor_spec", """def forward(model, batch):
    if len(batch[0]) > 8:
        raise MemoryError("simulated: the allocator refused")
    return model(batch[0]), batch[1]

def dldoctor_spec""")
    findings, _ = run(make_project(body), "10GB")
    f = findings[0]
    assert f.severity is Severity.ERROR and "something else holds the memory" in f.title


def test_nothing_fits_even_one_sample(make_project):
    body = CNN.replace("{extra}", '"forward": forward,').replace("def dldoctor_spec", """def forward(model, batch):
    raise MemoryError("simulated: the allocator refused")

def dldoctor_spec""")
    findings, _ = run(make_project(body))
    f = findings[0]
    assert f.severity is Severity.ERROR and "even at batch 1" in f.title
    assert f.location == "model[2]"  # the second convolution: 576 weights


def test_other_crashes_are_left_to_the_forward_pass_check(make_project):
    body = HEALTHY_BODY.replace("nn.Linear(8, 16)", "nn.Linear(9, 16)")
    findings, result = run(make_project(body))
    assert findings == () and result.status.value == "passed"


def test_batch_of_one_and_fixed_batch_forward_still_get_the_breakdown(make_project):
    findings, _, measured = run(make_project(HEALTHY_BODY.replace("batch_size=32", "batch_size=1")), measured=True)
    assert findings == () and measured["memory.peak_bytes_per_sample"]["title"].endswith("(measured at batch 1)")
    fixed = HEALTHY_BODY.replace('"optimizer"', '"forward": lambda m, b: (m(b[0].view(32, 8)), b[1]),\n'
                                                '        "optimizer"')
    findings, _, measured = run(make_project(fixed), measured=True)
    assert findings == () and measured["memory.peak_bytes_per_sample"]["title"].endswith("(measured at batch 32)")


def test_malformed_budget_is_a_config_error(make_project):
    # The config schema checks the size when the config is resolved, before any check runs.
    with pytest.raises(ConfigError, match=r"memory_model\.budget = 'lots' is not a size"):
        run(make_project(HEALTHY_BODY), "lots")


@pytest.mark.parametrize("text, expected", [
    ("", None), ("  ", None), ("1073741824", 2**30), ("8GiB", 8 * 2**30), ("500MB", 500 * 10**6),
    ("2.5G", int(2.5 * 2**30)), ("512 mib", 512 * 2**20), ("1.5TB", 1_500_000_000_000), ("100k", 102400),
    ("64B", 64), (".5GB", 500_000_000),
])
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["lots", "8 GiBs", "-1GB", "GB", "1e9", "0", "0.1B", "1,000MB"])
def test_parse_budget_rejects_malformed_values(text):
    with pytest.raises(ConfigError):
        parse_budget(text)


def test_format_bytes():
    assert format_bytes(412_345_678) == "412 MB"
    assert format_bytes(15_200_000_000) == "15.2 GB"
    assert format_bytes(3_900) == "3.9 kB"
    assert format_bytes(512) == "512 B"


def _model(per_sample=1000.0):
    return MemoryModel(
        device="cuda:0", batch_size=100, measured_sizes=(50, 100), param_bytes=10_000, grad_bytes=10_000,
        optimizer_name="Adam", optimizer_state_bytes=20_000, optimizer_state_measured=True,
        input_bytes_per_sample=10, saved_bytes=(1, 2), saved_bytes_per_sample=800, pass_fixed_bytes=10_000,
        pass_bytes_per_sample=per_sample, optimizer_step_bytes=40_000, held_bytes_per_sample=10,
        largest_layer=None, largest_activation=None)


def test_judge_uses_the_prediction_without_a_real_probe():
    mm = _model()  # needs 140,000 bytes at batch 100
    assert judge(mm, 200_000, 0.1).severity is Severity.INFO
    assert judge(mm, 150_000, 0.1).severity is Severity.WARNING
    v = judge(mm, 100_000, 0.1)
    assert v.severity is Severity.ERROR and v.capacity == 60 and v.recommended == 50


def test_judge_prefers_the_real_probe():
    mm = _model()
    fits = RealProbe(start=60, largest_fit=180, smallest_fail=190, trials=((60, True),), stopped="converged")
    v = judge(mm, 100_000, 0.1, fits)  # the prediction said no, the real steps say yes
    assert v.severity is Severity.INFO and v.capacity == 180 and v.recommended == 162
    fails = RealProbe(start=160, largest_fit=80, smallest_fail=90, trials=((160, False),), stopped="converged")
    assert judge(mm, 1_000_000, 0.1, fails).severity is Severity.ERROR
