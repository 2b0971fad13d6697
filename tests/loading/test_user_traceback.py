from pathlib import Path

import pytest

from dldoctor.loading.user_traceback import exception_line, format_user_traceback


def test_library_frames_are_dropped():
    import torch

    with pytest.raises(RuntimeError) as info:
        torch.nn.Linear(3, 2)(torch.zeros(4, 5))
    text = format_user_traceback(info.value, (Path(__file__).parent,))
    assert "test_user_traceback.py" in text
    assert "torch/nn" not in text
    assert exception_line(info.value).startswith("RuntimeError: mat1 and mat2")
