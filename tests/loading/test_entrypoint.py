import pytest

from dldoctor.core.errors import EntrypointError
from dldoctor.loading.entrypoint import load_target
from dldoctor.loading.spec import Spec
from tests.conftest import HEALTHY_BODY


def test_imports_without_running_main_and_validates(make_project, tmp_path):
    marker = tmp_path / "ran"
    path = make_project(HEALTHY_BODY + f"""
if __name__ == "__main__":
    open({str(marker)!r}, "w").write("trained")
""")
    loaded = load_target(str(path))
    assert isinstance(loaded.spec, Spec)
    assert not marker.exists()
    assert loaded.user_roots == (path.parent.resolve(),)


def test_a_spec_object_is_accepted(make_project):
    path = make_project(HEALTHY_BODY.replace("def dldoctor_spec():\n    return {", "def make():\n    return {")
                        + "\nimport dldoctor\ndef dldoctor_spec():\n    return dldoctor.Spec(**make())\n")
    assert load_target(str(path)).spec.loss_fn is not None


def test_spec_option_forms(make_project, tmp_path, monkeypatch):
    path = make_project(HEALTHY_BODY.replace("def dldoctor_spec", "def other_spec"))
    assert load_target(str(path), "other_spec").spec is not None
    assert load_target(None, f"{path}:other_spec").spec is not None
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "specs.py").write_text(path.read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_target(None, "mypkg.specs:other_spec").spec is not None


@pytest.mark.parametrize("body,needle", [
    ("x = 1\n", "has no function dldoctor_spec()"),
    ("dldoctor_spec = 3\n", "not a function"),
    ("def dldoctor_spec():\n    return 3\n", "must return a dict"),
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2)}\n", "missing the required keys"),
    ("def dldoctor_spec():\n    return {'model': 3, 'train_loader': [], 'loss_fn': nn.MSELoss(),"
     " 'optimizer': torch.optim.SGD}\n", "'model' must be an nn.Module"),
    ("m = nn.Linear(2, 2)\ndef dldoctor_spec():\n    return {'model': m, 'train_loader': [],"
     " 'loss_fn': nn.MSELoss(), 'optimizer': torch.optim.SGD(m.parameters(), lr=0.1)}\n", "optimiser instance"),
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2), 'train_loader': (b for b in []),"
     " 'loss_fn': nn.MSELoss(), 'optimizer': torch.optim.SGD}\n", "one-shot iterator"),
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2), 'train_loader': [], 'loss_fn': 3,"
     " 'optimizer': torch.optim.SGD}\n", "'loss_fn' must be callable"),
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2), 'train_loader': [], 'loss_fn': nn.MSELoss(),"
     " 'optimizer': torch.optim.SGD, 'modle': 1}\n", "did you mean 'model'"),
    ("def dldoctor_spec():\n    return {'model': nn.Linear(2, 2), 'train_loader': [], 'loss_fn': nn.MSELoss(),"
     " 'optimizer': torch.optim.SGD, 'task': 'segmentation'}\n", "'task' must be one of"),
    ("def dldoctor_spec(lr):\n    return {}\n", "without defaults: lr"),
    ("def dldoctor_spec():\n    raise KeyError('data_dir')\n", "raised KeyError"),
    ("import not_a_module_xyz\n", "raised ModuleNotFoundError"),
    ("def broken(:\n", "syntax error at line"),
])
def test_entrypoint_problems_name_the_problem(make_project, body, needle):
    path = make_project(body)
    with pytest.raises(EntrypointError) as err:
        load_target(str(path))
    assert needle in err.value.message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(EntrypointError, match="file not found"):
        load_target(str(tmp_path / "nope.py"))
    with pytest.raises(EntrypointError, match="is a folder"):
        load_target(str(tmp_path))


def test_user_traceback_is_trimmed_to_the_users_frames(make_project):
    path = make_project("""
def helper():
    return {}["data_dir"]

def dldoctor_spec():
    return helper()
""")
    with pytest.raises(EntrypointError) as err:
        load_target(str(path))
    tb = err.value.user_traceback
    assert "in helper" in tb and "in dldoctor_spec" in tb
    assert "dldoctor/loading" not in tb and "site-packages" not in tb
    assert tb.rstrip().endswith("KeyError: 'data_dir'")


def test_hyper_parameters_reach_the_spec_function(make_project):
    path = make_project(HEALTHY_BODY.replace("def dldoctor_spec():", "def dldoctor_spec(lr=1e-2):"))
    assert load_target(str(path), hparams={"lr": 0.5}).hparams == {"lr": 0.5}
    with pytest.raises(EntrypointError, match="no keyword argument 'width'"):
        load_target(str(path), hparams={"width": 3})
