import subprocess
import sys

from pipelines import cli


def test_cli_lists_every_job(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for job in ("curate", "train", "evaluate", "serve", "demo", "config"):
        assert job in out


def test_unknown_subcommand_fails(capsys):
    assert cli.main(["frobnicate"]) == 2


def test_config_describe_and_overrides(capsys):
    assert cli.main(["config", "--describe"]) == 0
    assert "perception.asr" in capsys.readouterr().out
    assert cli.main(["config", "--set", "perception.asr=whisper"]) == 0
    assert "asr: whisper" in capsys.readouterr().out


def test_console_script_is_installed():
    exe = [sys.executable, "-m", "pipelines.cli", "config", "--set", "perception.nope=1"]
    proc = subprocess.run(exe, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "perception.nope" in proc.stderr and "Traceback" not in proc.stderr


def _config_error(capsys, *argv):
    import pytest

    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    err = capsys.readouterr().err
    return exc.value.code, err.strip().splitlines()


def test_bad_set_type_is_one_line_naming_key_and_type_exit_2(capsys):
    code, lines = _config_error(capsys, "config", "--set", "eval.concurrency=abc")
    assert code == 2 and len(lines) == 1, lines
    assert "eval.concurrency" in lines[0] and "expected int" in lines[0] and "Traceback" not in lines[0]


def test_bad_set_key_on_a_job_exits_2_with_one_line(capsys):
    code, lines = _config_error(capsys, "evaluate", "--set", "eval.nope=1")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("amuse evaluate: config error:") and "'eval.nope'" in lines[0]


def test_invalid_yaml_file_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("eval: [unclosed\n  x: 1\n")
    code, lines = _config_error(capsys, "config", "--config", str(bad))
    assert code == 2 and len(lines) == 1 and "bad.yaml" in lines[0], lines
