"""A prebuilt diagnosis shared by the JUnit, GitHub and SARIF renderer tests."""

from dldoctor.core.diagnosis import CheckResult, Diagnosis
from dldoctor.core.finding import Finding

SHAPE = Finding(
    id="shape-mismatch", severity="error", confidence=0.95, title="fc1 (Linear) expects 256 input features, gets 400",
    check="forward-pass", evidence=("fc1 (Linear, in_features=256) got [64, 400] float32",
                                    "torch said: RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    fixes=("Set in_features=400 in fc1.",), location="fc1", stage="run", rank=1,
    file="examples/bugs/crash_cnn_wrong_in_features.py", line=22)
LR = Finding(
    id="lr-too-low", severity="warning", confidence=0.6, title="loss 2.30 -> 2.29: 50% done, 10% left, a,b:c",
    check="overfit-batch", evidence=("loss 2.30 -> 2.29 in 200 steps\nsecond line\r",), fixes=("Try lr=1e-3.",),
    stage="overfit", explained_by="shape-mismatch", rank=2)
INFO = Finding(id="class-imbalance", severity="info", confidence=0.9, title="classes 0 and 1 are 90/10",
               check="class-imbalance", stage="data", location="data", rank=3)

DIAGNOSIS = Diagnosis(
    dldoctor_version="0.1.0", target="examples/bugs/crash_cnn_wrong_in_features.py",
    diagnoses=(SHAPE, LR, INFO),
    checks=(CheckResult("forward-pass", "run", "failed", 0.12),
            CheckResult("overfit-batch", "overfit", "failed", 2.5),
            CheckResult("class-imbalance", "data", "passed", 0.3),
            CheckResult("label-range", "run", "skipped", 0.0, "no classification task"),
            CheckResult("numerics", "run", "errored", 1.0, "timed out after 120 s")),
    seed=0, device="cpu", duration_s=4.0,
)

FATAL = Diagnosis(
    dldoctor_version="0.1.0", target="train.py",
    diagnoses=(Finding(id="entrypoint-error", severity="error", confidence=1.0,
                       title="dldoctor_spec() raised FileNotFoundError: data/train.csv", check="load-entrypoint",
                       evidence=("dldoctor_spec() raised FileNotFoundError: data/train.csv",),
                       fixes=("Make dldoctor_spec() run on its own.",), metrics={"fatal": True},
                       location="entrypoint", stage="run", rank=1),),
)
