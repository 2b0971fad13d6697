"""The input-scale check: unnormalised inputs are reported with the constants to fix them; healthy ones are not."""

import pytest

from dldoctor.checks.running.input_scale import judge_inputs
from dldoctor.probes.input_stats import FeatureStats, InputStats
from tests.conftest import diagnose_file

SPEC = """
g = torch.Generator().manual_seed(0)
{data}

def dldoctor_spec():
    return {{
        "model": lambda: {model},
        "train_loader": DataLoader(TensorDataset(X, y), batch_size=32),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3),
        {extra}
    }}
"""

CNN = "nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 4))"
MLP = "nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))"
LABELS = "y = torch.randint(0, 4, (128,), generator=g)\n"
PIXELS = "torch.randint(0, 256, (128, 3, 8, 8), generator=g).float()"


FEATURES_IN_UNITS = ("X = torch.randn(128, 6, generator=g) * torch.tensor([1e4, 1.0, 0.01, 5.0, 1.0, 1.0])"
                     " + torch.tensor([5e4, 0, 0, 40, 0, 0])\n" + LABELS)
NORMALIZE = ("class Normalize(nn.Module):\n"
             "    def __init__(self, mean, std, frozen=False):\n"
             "        super().__init__()\n"
             "        if frozen:\n"
             "            self.mean = nn.Parameter(mean, requires_grad=False)\n"
             "            self.std = nn.Parameter(std, requires_grad=False)\n"
             "        else:\n"
             "            self.register_buffer('mean', mean)\n"
             "            self.register_buffer('std', std)\n"
             "    def forward(self, x):\n"
             "        return (x - self.mean) / self.std\n")


def run(make_project, data, model, extra=""):
    path = make_project(SPEC.format(data=data, model=model, extra=extra))
    return [f for f in diagnose_file(path, select=("input-scale",)).diagnoses if f.id == "input-not-normalized"]


def test_raw_pixels_are_reported_with_normalize_constants(make_project):
    [finding] = run(make_project, f"X = {PIXELS}\n" + LABELS, CNN)
    assert finding.severity.value == "warning" and finding.location == "data"
    assert "raw integer pixel values" in finding.title
    assert finding.metrics["raw_pixel_full_scale"] == 255 and finding.metrics["rms"] > 100
    assert "transforms.Normalize(mean=(0.5" in finding.fixes[0] and "x / 255" in finding.fixes[0]
    assert any("channel 0: mean 12" in e for e in finding.evidence)


def test_features_in_different_units(make_project):
    data = ("X = torch.randn(128, 6, generator=g) * torch.tensor([1e4, 1.0, 0.01, 5.0, 1.0, 1.0])"
            " + torch.tensor([5e4, 0, 0, 40, 0, 0])\n" + LABELS)
    [finding] = run(make_project, data, MLP)
    assert finding.severity.value == "warning"
    assert "far from unit scale" in finding.title and "differ by" in finding.title
    assert finding.metrics["scale_disparity"] > 1e5
    assert "std = torch.tensor([" in finding.fixes[0]
    assert any(e.startswith("feature 0: mean 5") for e in finding.evidence)


def test_inputs_scaled_twice(make_project):
    [finding] = run(make_project, f"X = {PIXELS} / 255 / 255\n" + LABELS, CNN)
    assert finding.severity.value == "warning" and "tiny" in finding.title
    assert "twice" in finding.fixes[0]


def test_offset_dominated_sequences(make_project):
    data = ("X = 290 + torch.randn(128, 10, 2, generator=g)\n" + LABELS
            + "class Net(nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.rnn = nn.GRU(2, 8, batch_first=True)\n"
              "        self.fc = nn.Linear(8, 4)\n"
              "    def forward(self, x):\n"
              "        return self.fc(self.rnn(x)[0][:, -1])\n")
    [finding] = run(make_project, data, "Net()")
    assert finding.severity.value == "warning"
    assert finding.metrics["offset_ratio"] > 100 and finding.metrics["features"] == 2
    assert "far from zero" in finding.title


def test_mild_scale_is_only_a_note(make_project):
    [finding] = run(make_project, "X = torch.randint(0, 17, (128, 6), generator=g).float()\n" + LABELS, MLP)
    assert finding.severity.value == "info"


@pytest.mark.parametrize("name,data,model,extra", [
    ("standardised", "X = torch.randn(128, 6, generator=g)\n" + LABELS, MLP, ""),
    ("images in [0, 1]", f"X = {PIXELS} / 255\n" + LABELS, CNN, ""),
    ("one-hot next to standardised",
     "X = torch.cat([torch.randn(128, 2, generator=g), nn.functional.one_hot(torch.randint(0, 4, (128,), "
     "generator=g), 4).float()], 1)\n" + LABELS, MLP, ""),
    ("token ids into an embedding", "X = torch.randint(0, 50, (128, 6), generator=g)\n" + LABELS,
     "nn.Sequential(nn.Embedding(50, 4), nn.Flatten(), nn.Linear(24, 4))", ""),
    ("batch norm first", f"X = {PIXELS}\n" + LABELS,
     "nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(288, 4))", ""),
    ("normalised inside forward", f"X = {PIXELS}\n" + LABELS
     + "class Net(nn.Module):\n"
       "    def __init__(self):\n"
       "        super().__init__()\n"
       "        self.body = " + CNN + "\n"
       "    def forward(self, x):\n"
       "        return self.body((x / 255 - 0.5) / 0.29)\n", "Net()", ""),
    ("custom forward", "X = torch.randn(128, 6, generator=g)\n" + LABELS, MLP,
     '"forward": lambda m, b: (m(b[0] * 1.0), b[1]),'),
    ("a buffer Normalize module first", FEATURES_IN_UNITS
     + "mean, std = X.mean(0), X.std(0)\n" + NORMALIZE,
     "nn.Sequential(Normalize(mean, std), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))", ""),
    ("a frozen-parameter Normalize module first", f"X = {PIXELS}\n" + LABELS + NORMALIZE,
     "nn.Sequential(Normalize(torch.full((1, 3, 1, 1), 127.5), torch.full((1, 3, 1, 1), 74.0), frozen=True), "
     + CNN[len("nn.Sequential("):], ""),
    ("flatten then a LayerNorm without affine parameters", f"X = {PIXELS}\n" + LABELS,
     "nn.Sequential(nn.Flatten(), nn.LayerNorm(192, elementwise_affine=False), nn.Linear(192, 4))", ""),
])
def test_healthy_inputs_are_silent(make_project, name, data, model, extra):
    assert run(make_project, data, model, extra) == [], name


def test_the_input_the_model_receives_is_measured_under_a_custom_forward(make_project):
    # The forward scales the batch before calling the model: the model sees unit-scale data.
    extra = '"forward": lambda m, b: (m(b[0] / 255), b[1]),'
    assert run(make_project, f"X = {PIXELS}\n" + LABELS, CNN, extra) == []


def test_a_fixed_normalize_that_leaves_the_scale_wrong_is_still_reported(make_project):
    # The model's own Normalize expects images in [0, 1], but it gets 0-255: the first
    # convolution receives values up to ~1000, and the evidence names the module passed.
    model = ("nn.Sequential(Normalize(torch.full((1, 3, 1, 1), 0.45), torch.full((1, 3, 1, 1), 0.225)), "
             + CNN[len("nn.Sequential("):])
    [finding] = run(make_project, f"X = {PIXELS}\n" + LABELS + NORMALIZE, model)
    assert finding.severity.value == "warning" and finding.metrics["rms"] > 100
    assert any("input of model[1] (Conv2d), after the model's own parameter-free model[0] (Normalize)" in e
               for e in finding.evidence)


def test_raw_pixels_through_a_flatten_are_measured_at_the_first_linear(make_project):
    model = "nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(192, 4))"
    [finding] = run(make_project, f"X = {PIXELS}\n" + LABELS, model)
    assert finding.metrics["raw_pixel_full_scale"] == 255
    assert any("input of model[2] (Linear)" in e for e in finding.evidence)


def _stats(features, layout="features", shape=(32, 3)):
    return InputStats(where="model[0]", module_type="Linear", shape=shape, dtype="float32", layout=layout,
                      samples=128, features=tuple(features))


THRESHOLDS = dict(rms_warn=10.0, rms_info=3.0, rms_tiny_warn=0.05, rms_tiny_info=0.15, offset_warn=3.0,
                  offset_info=2.5, disparity_warn=100.0, disparity_info=30.0, max_pixel_min=16.0, features_shown=4)


def test_sparse_features_with_ordinary_values_are_not_a_scale_gap():
    dense = FeatureStats(mean=0.0, std=1.0, min=-3.0, max=3.0, integer_valued=False, binary=False)
    sparse = FeatureStats(mean=0.002, std=0.004, min=0.0, max=2.5, integer_valued=False, binary=False)
    assert judge_inputs(_stats([dense, dense, sparse]), THRESHOLDS) is None


def test_sparse_counts_are_not_tiny():
    # Bag-of-words counts: rms 0.05 because most entries are 0, but the counts themselves are 1-4.
    counts = [FeatureStats(mean=0.003, std=0.05, min=0.0, max=float(1 + i % 4), integer_valued=True, binary=False)
              for i in range(200)]
    assert judge_inputs(_stats(counts, shape=(32, 200)), THRESHOLDS) is None


def test_binary_and_constant_features_are_left_out():
    raw = FeatureStats(mean=50.0, std=20.0, min=0.0, max=100.0, integer_valued=False, binary=False)
    flag = FeatureStats(mean=0.01, std=0.1, min=0.0, max=1.0, integer_valued=True, binary=True)
    const = FeatureStats(mean=7.0, std=0.0, min=7.0, max=7.0, integer_valued=True, binary=False)
    verdict = judge_inputs(_stats([raw, flag, const]), THRESHOLDS)
    assert verdict is not None and verdict.case == "scale"
    assert verdict.metrics["scale_disparity"] == 1.0
    assert "leave the 0/1 features [1]" in verdict.fixes[0]
    assert judge_inputs(_stats([flag, const]), THRESHOLDS) is None


def test_skipped_measurements_are_not_judged():
    stats = InputStats(where="embed", module_type="Embedding", shape=(32, 6), dtype="int64", layout="",
                       samples=0, features=(), skipped="integer inputs (token ids or indices) go into nn.Embedding")
    assert judge_inputs(stats, THRESHOLDS) is None


def test_a_scale_that_stops_one_batch_from_fitting_is_confirmed_by_standardising_it():
    """Inputs scaled twice (rms ~0.002): the batch does not fit at the user's rate, and fits once
    the inputs are standardised; the finding says so, and ranks as experiment-confirmed."""
    from tests.conftest import REPO, diagnose_file

    diagnosis = diagnose_file(REPO / "examples" / "bugs" / "scale_cnn_scaled_twice.py", select=("input-scale",))
    [found] = diagnosis.diagnoses
    assert found.metrics["confirmed_by"] == "inputs standardised"
    assert any("with the inputs standardised" in e for e in found.evidence)


def test_a_scale_the_model_fits_through_is_reported_but_not_confirmed():
    from tests.conftest import REPO, diagnose_file

    diagnosis = diagnose_file(REPO / "examples" / "bugs" / "scale_wine_raw_features.py", select=("input-scale",))
    [found] = diagnosis.diagnoses
    assert found.id == "input-not-normalized" and "confirmed_by" not in found.metrics
