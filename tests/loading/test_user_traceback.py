from pathlib import Path

from dldoctor.loading.user_traceback import exception_line, format_user_traceback


def test_library_frames_are_dropped():
    import torch

    try:
        torch.nn.Linear(3, 2)(torch.zeros(4, 5))
    except RuntimeError as exc:
        text = format_user_traceback(exc, (Path(__file__).parent,))
        assert "test_user_traceback.py" in text
        assert "torch/nn" not in text
        assert exception_line(exc).startswith("RuntimeError: mat1 and mat2")
