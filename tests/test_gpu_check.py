"""scripts/gpu_check.py, dry: the GPU machine's script on the CPU, tiny, so that it cannot rot between GPU loans."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_gpu_check_runs_every_part_dry_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + "".join(p.read_text() for p in out.glob("*.log"))
    summary = json.loads((out / "summary.json").read_text())
    assert [p["part"] for p in summary["parts"]] == ["env", "tests", "throughput", "run"]
    assert all(p["status"] in ("passed", "nothing to do") for p in summary["parts"])
    throughput = json.loads((out / "throughput-eager.json").read_text())
    assert throughput["settings"]["precision"] == "bf16" and throughput["results"][0]["images_per_s"] > 0
    run = json.loads((out / "run" / "run.json").read_text())
    assert run["precision"] == "bf16" and run["config"]["cache"] is True
    assert len((out / "run" / "metrics.jsonl").read_text().splitlines()) == run["config"]["epochs"]


def test_the_gpu_check_refuses_a_missing_data_folder_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--out", str(tmp_path), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "has no train/ folder" in done.stderr
    assert "Traceback" not in done.stderr
