"""Execute the analyst notebooks top to bottom (CI smoke test; outputs are never written back).

Usage::

    .venv/bin/python notebooks/run_notebooks.py          # every notebooks/*.ipynb, small scale
    .venv/bin/python notebooks/run_notebooks.py 02_train_and_evaluate.ipynb
    .venv/bin/python notebooks/run_notebooks.py --scale medium --save-to /tmp/executed

Each notebook runs in a fresh ``python3`` kernel of *this* interpreter (ipykernel must be
installed in the same environment; the kernel spec is registered with ``--sys-prefix`` if it is
missing), in a temporary working folder (also its TMPDIR, so scratch files are removed), with a
timeout per cell. The size is passed to the
notebooks as ``RISKMODEL_NB_SCALE``. The repository files stay untouched: executed copies are
written only with ``--save-to``. Exit status 0 when every notebook ran without error, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNEL = "python3"


def _runs_this_python(argv0: str) -> bool:
    # jupyter_client replaces a bare "python" (or pythonX, pythonX.Y) by sys.executable.
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    return argv0 in bare or os.path.abspath(argv0) == os.path.abspath(sys.executable)


def ensure_kernel() -> str:
    """Make sure the ``python3`` kernel runs this interpreter; return its argv[0].

    This environment's kernel specs take precedence over user-wide ones (``JUPYTER_PATH``), and
    the spec is registered with ``--sys-prefix`` when it is missing or points elsewhere.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    data = os.path.join(sys.prefix, "share", "jupyter")
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if data not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([data, *paths])  # inherited by kernels
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        ok = _runs_this_python(spec.argv[0])
    except NoSuchKernel:
        ok = False
    if not ok:
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        if not _runs_this_python(spec.argv[0]):
            raise SystemExit(
                f"run_notebooks: kernel {KERNEL!r} runs {spec.argv[0]}, not {sys.executable}"
            )
    return spec.argv[0]


def run_one(path: Path, timeout: int, save_to: Path | None) -> tuple[bool, float, str]:
    """Execute one notebook; return (ok, seconds, error text)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    err = ""
    with tempfile.TemporaryDirectory(prefix=f"nb_{path.stem}_") as cwd:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=KERNEL,
            resources={"metadata": {"path": cwd}},
            allow_errors=False,
        )
        kernel_log = Path(cwd) / "kernel.log"
        scratch = Path(cwd) / "tmp"  # the notebooks' tempfile folders, removed afterwards
        scratch.mkdir()
        env = {**os.environ, "TMPDIR": str(scratch)}
        with open(kernel_log, "w", encoding="utf-8") as log:
            try:
                # The kernel's own stderr (start-up chatter) goes to a log, shown on failure.
                client.execute(stderr=log, env=env)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
                err = str(exc)
            except Exception as exc:  # kernel start-up and the like: report, do not crash
                err = f"{type(exc).__name__}: {exc}"
        if err:
            chatter = "\n".join(
                line
                for line in kernel_log.read_text(encoding="utf-8", errors="replace").splitlines()
                if "running over TCP without encryption" not in line  # ipykernel >= 7 notice
            ).strip()
            if chatter:
                err += "\n--- kernel stderr ---\n" + chatter[-5000:]
    secs = time.perf_counter() - t0
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save_to / path.name)
    return not err, secs, err


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="notebook files (default: notebooks/*.ipynb)")
    ap.add_argument(
        "--scale",
        default=os.environ.get("RISKMODEL_NB_SCALE", "small"),
        choices=("small", "medium", "full"),
        help="problem size passed as RISKMODEL_NB_SCALE (default small)",
    )
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    ap.add_argument("--save-to", type=Path, default=None, help="write executed copies here")
    args = ap.parse_args(argv)

    paths = [Path(p) for p in args.notebooks] or sorted(HERE.glob("*.ipynb"))
    paths = [p if p.exists() else HERE / p for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        print(f"run_notebooks: no such notebook(s): {missing or 'none found'}", file=sys.stderr)
        return 1
    os.environ["RISKMODEL_NB_SCALE"] = args.scale  # inherited by the kernels
    exe = ensure_kernel()
    print(f"run_notebooks: {len(paths)} notebook(s), scale {args.scale}, kernel {KERNEL} ({exe})")

    failed = []
    total = 0.0
    for p in paths:
        print(f"  {p.name:<34} ...", end="", flush=True)
        ok, secs, err = run_one(p, args.timeout, args.save_to)
        total += secs
        print(f" {'ok' if ok else 'FAILED'} in {secs:6.1f} s", flush=True)
        if not ok:
            failed.append(p.name)
            print(err, file=sys.stderr)
    print(f"run_notebooks: {len(paths) - len(failed)}/{len(paths)} ok in {total:.1f} s")
    if failed:
        print(f"run_notebooks: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
