"""Runner safety, end to end: the terminal gets the verdict line only, the kernel gets its own environment
(writer secrets only with --allow-writes), evidence that cannot be written is one line and exit 4, nothing
is written through a symlink below outputs/, and a killed run's raw notebook does not outlive the next run."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner.workspace import CANARY, FD_CANARY, WRITER_DSN, Workspace

from opsnb.runner.evidence import remove_leftover_work, work_folder_name, write_atomic


def run_patched(
    ws: Workspace, args: list[str], before: str = "", after: str = "", timeout: float = 120
) -> subprocess.CompletedProcess:
    """`opsnb ARGS` in a subprocess that runs ``before`` first (to inject a fault) and ``after`` last."""
    code = (
        f"import sys\n{before}\nfrom opsnb.cli import main\ncode = main({args!r})\n{after}\nsys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=ws.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def only_the_verdict_line(result: subprocess.CompletedProcess, outcome: str) -> None:
    """Nothing but the verdict line reached the terminal."""
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(outcome), result.stdout


def one_error_line(result: subprocess.CompletedProcess, says: str) -> str:
    """Exit 4 and one line 'could not write the evidence: …' on stderr; no traceback."""
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("opsnb: error: could not write the evidence: "), lines[0]
    assert says in lines[0], lines[0]
    return lines[0]


def complete_bundle(ws: Workspace, runbook: str, outcome: str) -> dict:
    """The one manifest of ``runbook``, with ``outcome`` and both files matching their sha256."""
    manifests = ws.bundles(runbook)
    assert len(manifests) == 1, manifests
    manifest = json.loads(manifests[0].read_text())
    assert manifest["outcome"] == outcome
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((manifests[0].parent / name).read_bytes()).hexdigest() == digest
    assert manifests[0].stem in (ws.outputs / "index.html").read_text()
    return manifest


def no_leftovers(ws: Workspace) -> None:
    assert ws.tmp_files() == []
    assert ws.work_folders() == []


# --- 1. kernel output never reaches the terminal ------------------------------------------------------------


def stream_text(notebook: Path) -> str:
    """All stream output of an executed notebook."""
    nb = json.loads(notebook.read_text())
    texts = [
        o.get("text", "") for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "stream"
    ]
    return "".join("".join(t) if isinstance(t, list) else t for t in texts)


def test_kernel_fd_output_never_reaches_the_terminal(workspace: Workspace) -> None:
    workspace.add_notebook("fd-output")
    result = workspace.run("run", "fd-output", "--env", "test")
    assert result.returncode == 0, result.stderr
    only_the_verdict_line(result, "PASS    fd-output [test]")
    terminal = result.stdout + result.stderr
    assert FD_CANARY not in terminal
    assert CANARY not in terminal  # `env` in the kernel printed the token
    assert "IPKernelApp" not in terminal
    # ipykernel forwards fd output into the notebook; the notebook is scrubbed before it is written
    executed = workspace.bundles("fd-output")[0].with_suffix(".ipynb")
    assert f"{FD_CANARY}-print" in stream_text(executed)
    for path in workspace.all_files():
        assert CANARY not in path.read_bytes().decode("utf-8", "replace"), path
    no_leftovers(workspace)


# --- 2. the kernel's environment ------------------------------------------------------------------------


def writes_environment(ws: Workspace, *, writer_in_env_file: bool) -> str:
    """The 'writer' notebook and an environment 'writes' whose env file holds the writer DSN or not."""
    ws.add_notebook("writer")
    env_file = ws.root / "writes.env"
    lines = [f"CANARY_TOKEN={CANARY}"] + ([f"WRITER_DATABASE_URL={WRITER_DSN}"] if writer_in_env_file else [])
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    (ws.root / "parameters" / "writes.yaml").write_text(f"env_file: {env_file}\n")
    return "writes"


def writer_detail(ws: Workspace) -> str:
    """What the 'writer' notebook saw: 'held=True' or 'held=False'."""
    manifest = json.loads(ws.bundles("writer")[0].read_text())
    return manifest["findings"][0]["detail"]


@pytest.mark.parametrize("source", ["inherited environment", "env file"])
def test_writer_secret_reaches_the_kernel_only_with_allow_writes(workspace: Workspace, source: str) -> None:
    env = writes_environment(workspace, writer_in_env_file=source == "env file")
    if source == "inherited environment":
        workspace.env["WRITER_DATABASE_URL"] = WRITER_DSN
    for flags, expected in (([], "held=False"), (["--allow-writes"], "held=True")):
        shutil.rmtree(workspace.outputs / "writer", ignore_errors=True)
        result = workspace.run("run", "writer", "--env", env, *flags)
        assert result.returncode == 0, result.stderr
        assert writer_detail(workspace) == expected, flags


def test_missing_writer_secret_matters_only_with_allow_writes(workspace: Workspace) -> None:
    env = writes_environment(workspace, writer_in_env_file=False)
    result = workspace.run("run", "writer", "--env", env)
    assert result.returncode == 0, result.stderr
    assert writer_detail(workspace) == "held=False"
    shutil.rmtree(workspace.outputs)
    result = workspace.run("run", "writer", "--env", env, "--allow-writes")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        f"opsnb: error: parameter 'writer_database_url_env' names $WRITER_DATABASE_URL, which is not set in "
        f"the environment or {workspace.root / 'writes.env'}"
    ]
    assert workspace.all_files() == []


def test_runner_environment_gains_no_secret(workspace: Workspace) -> None:
    env = writes_environment(workspace, writer_in_env_file=True)
    report = workspace.root / "environ.json"
    result = run_patched(
        workspace,
        ["run", "writer", "--env", env, "--allow-writes"],
        before="import os\nbefore = dict(os.environ)",
        after="import json\n"
        f"open({str(report)!r}, 'w').write(json.dumps({{"
        "'added': sorted(set(os.environ) - set(before)),"
        "'changed': sorted(k for k in before if os.environ.get(k) != before[k])}))",
    )
    assert result.returncode == 0, result.stderr
    assert writer_detail(workspace) == "held=True"  # the kernel had it ...
    assert json.loads(report.read_text()) == {"added": [], "changed": []}  # ... the runner never did


# --- 3. evidence that cannot be written: one line, exit 4 ---------------------------------------------


def test_evidence_folder_that_is_a_file(workspace: Workspace) -> None:
    workspace.outputs.mkdir()
    (workspace.outputs / "verdict").write_text("a file")
    result = workspace.run("run", "verdict", "--env", "test")
    one_error_line(result, f"{workspace.outputs / 'verdict'} is not a folder")
    assert (workspace.outputs / "verdict").read_text() == "a file"
    assert not list(workspace.outputs.rglob("*.ipynb"))  # refused before the kernel started
    no_leftovers(workspace)


def test_outputs_inside_a_file(workspace: Workspace) -> None:
    blocker = workspace.root / "blocker"
    blocker.write_text("")
    workspace.env["OPSNB_OUTPUTS"] = str(blocker / "outputs")
    result = workspace.run("run", "verdict", "--env", "test")
    one_error_line(result, "Not a directory")
    assert blocker.read_text() == ""


def test_evidence_folder_replaced_by_a_file_during_the_run(workspace: Workspace) -> None:
    workspace.add_notebook("sabotage")
    result = workspace.run("run", "sabotage", "--env", "test")
    one_error_line(result, "is not a folder (the run of sabotage [test] ended PASS)")
    assert (workspace.outputs / "sabotage").read_text() == "not a folder"
    no_leftovers(workspace)


def test_evidence_folder_replaced_by_a_symlink_during_the_run(workspace: Workspace) -> None:
    workspace.add_notebook("sabotage")
    elsewhere = workspace.root / "elsewhere"
    elsewhere.mkdir()
    workspace.env["SABOTAGE_TARGET"] = str(elsewhere)
    result = workspace.run("run", "sabotage", "--env", "test")
    one_error_line(result, "is a symbolic link")
    assert list(elsewhere.iterdir()) == []
    no_leftovers(workspace)


def test_disk_full_while_writing_the_bundle(workspace: Workspace) -> None:
    full = (
        "import errno, os\n"
        "def full(fd):\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "os.fsync = full\n"
    )
    result = run_patched(workspace, ["run", "verdict", "--env", "test"], before=full)
    line = one_error_line(result, "No space left on device (the run of verdict [test] ended PASS)")
    assert str(workspace.outputs / "verdict") in line  # names the file it could not write
    assert list((workspace.outputs / "verdict").iterdir()) == []
    no_leftovers(workspace)


def test_unexpected_error_while_writing_the_bundle(workspace: Workspace) -> None:
    bug = (
        "import opsnb.runner.report\n"
        "def render(*args, **kwargs):\n"
        "    raise RuntimeError('render bug\\nsecond line')\n"
        "opsnb.runner.report.render = render\n"
    )
    result = run_patched(workspace, ["run", "verdict", "--env", "test"], before=bug)
    one_error_line(result, "could not write the evidence: RuntimeError: render bug (the run of verdict")
    no_leftovers(workspace)


def test_write_atomic_removes_its_temporary_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "index.html"
    target.write_text("old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        write_atomic(target, b"new")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]
    assert target.read_text() == "old"


# --- signals ------------------------------------------------------------------------------------------


def start_long_run(ws: Workspace) -> subprocess.Popen:
    """The 'interrupt' runbook, once its long cell has started."""
    proc = ws.popen("run", "interrupt", "--env", "test")
    marker = Path(ws.env["MARKER"])
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the long cell never started"
    return proc


@pytest.mark.parametrize("pattern", ["three at once", "three spaced", "until it exits"])
def test_repeated_sigterms_still_end_in_exit_4_and_a_bundle(workspace: Workspace, pattern: str) -> None:
    proc = start_long_run(workspace)
    if pattern == "until it exits":
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.02)
    else:
        for _ in range(3):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.0 if pattern == "three at once" else 0.3)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, (out, err)
    only_the_verdict_line(subprocess.CompletedProcess([], 4, out, err), "INTERRUPTED")
    complete_bundle(workspace, "interrupt", "INTERRUPTED")
    no_leftovers(workspace)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_the_bundle_is_written_does_not_interrupt_it(workspace: Workspace, signum: int) -> None:
    # Every file of the bundle and the index is written right after a signal to ourselves.
    signalled = (
        "import os, opsnb.runner.evidence, opsnb.runner.index\n"
        "real = opsnb.runner.evidence.write_atomic\n"
        "def write_atomic(path, data):\n"
        f"    os.kill(os.getpid(), {int(signum)})\n"
        "    real(path, data)\n"
        "opsnb.runner.evidence.write_atomic = opsnb.runner.index.write_atomic = write_atomic\n"
    )
    result = run_patched(workspace, ["run", "verdict", "--env", "test"], before=signalled)
    assert result.returncode == 0, (result.stdout, result.stderr)
    only_the_verdict_line(result, "PASS")
    complete_bundle(workspace, "verdict", "PASS")
    no_leftovers(workspace)


# --- 4. symlinks below outputs/ -------------------------------------------------------------------------


@pytest.mark.parametrize("target_exists", [True, False])
def test_symlinked_index_lock_is_refused_and_its_target_untouched(
    workspace: Workspace, target_exists: bool
) -> None:
    victim = workspace.root / "victim.txt"
    if target_exists:
        victim.write_text("precious")
    workspace.outputs.mkdir()
    (workspace.outputs / ".index.lock").symlink_to(victim)
    result = workspace.run("run", "verdict", "--env", "test")
    one_error_line(result, ".index.lock is a symbolic link")
    assert victim.read_text() == "precious" if target_exists else not victim.exists()
    assert len(workspace.bundles("verdict")) == 1  # the bundle came before the index
    no_leftovers(workspace)


@pytest.mark.parametrize("target_exists", [True, False])
def test_symlinked_index_is_replaced_not_followed(workspace: Workspace, target_exists: bool) -> None:
    target = workspace.root / "elsewhere.html"
    if target_exists:
        target.write_text("precious")
    workspace.outputs.mkdir()
    (workspace.outputs / "index.html").symlink_to(target)
    result = workspace.run("run", "verdict", "--env", "test")
    assert result.returncode == 0, result.stderr
    assert target.read_text() == "precious" if target_exists else not target.exists()
    index = workspace.outputs / "index.html"
    assert not index.is_symlink() and "verdict/" in index.read_text()
    no_leftovers(workspace)


@pytest.mark.parametrize("target_exists", [True, False])
def test_symlinked_runbook_folder_is_refused(workspace: Workspace, target_exists: bool) -> None:
    target = workspace.root / "elsewhere"
    if target_exists:
        target.mkdir()
    workspace.outputs.mkdir()
    (workspace.outputs / "verdict").symlink_to(target, target_is_directory=True)
    result = workspace.run("run", "verdict", "--env", "test")
    one_error_line(result, f"{workspace.outputs / 'verdict'} is a symbolic link")
    assert list(target.iterdir()) == [] if target_exists else not target.exists()
    no_leftovers(workspace)


# --- 5. the private work folder ---------------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftover_work_folder_of_a_dead_run_is_removed(workspace: Workspace) -> None:
    work = workspace.outputs / ".work"
    work.mkdir(parents=True, mode=0o700)
    dead = work / work_folder_name("dead000001", pid=dead_pid())
    dead.mkdir()
    (dead / "executed.ipynb").write_text(CANARY)
    alive = work / work_folder_name("a11ce00001", pid=os.getpid())
    alive.mkdir()
    other_host = work / f"another-host.example_{dead_pid()}_0b0e000001"
    other_host.mkdir()
    result = workspace.run("run", "verdict", "--env", "test")
    assert result.returncode == 0, result.stderr
    assert not dead.exists()
    assert alive.exists() and other_host.exists()  # a live run's folder, another machine's folder
    assert ".work" not in (workspace.outputs / "index.html").read_text()


def test_sigkilled_run_leaves_its_work_folder_to_the_next_run(workspace: Workspace) -> None:
    proc = start_long_run(workspace)
    [folder] = workspace.work_folders()
    assert folder.name == work_folder_name(folder.name.rsplit("_", 1)[1], pid=proc.pid)
    # rwx for us alone (jupyter_client adds the sticky bit to the folder of the connection file)
    assert stat.S_IMODE(folder.stat().st_mode) & 0o777 == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert (folder / "kernel.log").is_file()
    proc.kill()
    proc.communicate(timeout=30)
    assert folder.exists()  # nothing could clean up after SIGKILL
    result = workspace.run("run", "verdict", "--env", "test")
    assert result.returncode == 0, result.stderr
    assert not folder.exists()
    assert workspace.work_folders() == []


def test_leftover_sweep_skips_symlinks_and_foreign_names(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    work = tmp_path / ".work"
    work.mkdir(mode=0o700)
    link = work / work_folder_name("5e1f000001", pid=dead_pid())
    link.symlink_to(outside, target_is_directory=True)
    (work / "not-a-run-folder").mkdir()
    assert remove_leftover_work(work) == []
    assert (outside / "keep.txt").read_text() == "keep"
    assert {p.name for p in work.iterdir()} == {link.name, "not-a-run-folder"}
