"""Reading a short run against its budget: is a gap the budget's or the model's?"""

from dldoctor.probes.training.short import Budget, EpochRecord, SplitScore, TrainingRun


def run_with(val_errors):
    epochs = tuple(EpochRecord(i + 1, 10 * (i + 1), 1.0, SplitScore(1.0, e, 100), SplitScore(1.0, e, 100), None)
                   for i, e in enumerate(val_errors))
    return TrainingRun(epochs=epochs, stopped_by="epochs", error_name="1 - accuracy", parameters=10,
                       budget=Budget(5, 800, 30.0))


def test_a_run_still_falling_fast_may_close_a_gap_its_pace_covers():
    run = run_with([0.50, 0.40, 0.35])  # last epoch -0.05; another 3 epochs at that pace: -0.15
    assert run.still_improving(0.005)
    assert run.may_close(0.10, 0.005)
    assert not run.may_close(0.30, 0.005)  # out of reach even at an undiminished pace


def test_a_flat_run_closes_nothing():
    run = run_with([0.30, 0.20, 0.199])
    assert not run.still_improving(0.005)
    assert not run.may_close(0.001, 0.005)
    assert not run_with([0.3]).may_close(0.01, 0.005)  # one epoch: no pace to read


def test_the_data_curve_ranks_more_data_first_when_validation_error_still_falls_with_data():
    """Thorough profile: 25% / 50% / 100% of a 150-sample training set; a wide MLP's
    validation error keeps falling steeply with more data, so more data is the first remedy."""
    from dldoctor.core.runner import RunOptions, diagnose
    from tests.conftest import REPO

    target = REPO / "examples" / "bugs" / "eval_overfit_wide_mlp_few_digits.py"
    diagnosis = diagnose(RunOptions(target=str(target), device="cpu", select=("bias-variance",),
                                    overrides=(("training.data_curve", True),)))
    overfitting = next(f for f in diagnosis.diagnoses if f.id == "overfitting")
    curve = next(e for e in overfitting.evidence if e.startswith("validation error with 25% / 50% / 100%"))
    errors = [float(x) for x in curve.split(": ", 1)[1].split(" / ")]
    assert errors[0] > errors[1] > errors[2]  # measured, not assumed
    assert "data" in overfitting.fixes[0].lower()
