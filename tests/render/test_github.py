"""GitHub workflow commands: one line per warning/error finding, escaped; the step summary."""

from dldoctor.render import OutputFormat, render
from dldoctor.render.github_report import escape_data, escape_property
from tests.render.format_cases import DIAGNOSIS, FATAL


def test_one_command_per_warning_or_error_finding(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    lines = render(DIAGNOSIS, OutputFormat.GITHUB).splitlines()
    assert len(lines) == 2  # the info finding gives none
    first, second = lines
    assert first.startswith("::error file=examples/bugs/crash_cnn_wrong_in_features.py,line=22,"
                            "title=dldoctor shape-mismatch::fc1 (Linear) expects 256")
    assert "%0Atorch said: RuntimeError" in first
    # no file known: no file= or line= property
    assert second.startswith("::warning title=dldoctor lr-too-low::")
    assert "file=" not in second and "line=" not in second


def test_message_and_properties_are_escaped(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert escape_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert escape_property("a,b:c%") == "a%2Cb%3Ac%25"
    line = render(DIAGNOSIS, OutputFormat.GITHUB).splitlines()[1]
    message = line.split("::", 2)[2]
    assert "50%25 done, 10%25 left, a,b:c" in message  # message keeps , and : as they are
    assert "\r" not in line and "second line%0D" in message and "steps%0Asecond line" in message


def test_step_summary_gets_the_markdown_report_appended(monkeypatch, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = render(FATAL, OutputFormat.GITHUB)
    assert out.startswith("::error title=dldoctor entrypoint-error::dldoctor_spec() raised FileNotFoundError")
    text = summary.read_text()
    assert text.startswith("earlier step\n## dldoctor: `train.py`")
    assert "`entrypoint-error`" in text


def test_unwritable_step_summary_is_a_message_not_a_traceback(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing-dir" / "summary.md"))
    assert render(FATAL, OutputFormat.GITHUB).startswith("::error ")
    assert "cannot append to GITHUB_STEP_SUMMARY" in capsys.readouterr().err
