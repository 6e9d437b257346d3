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
    assert proc.returncode != 0
    assert "perception.nope" in proc.stderr
