"""Add bytecode to the `chalice package` zip for exactly the modules `import app` loads.

Lambda cannot write ``__pycache__`` under /var/task, so a zip without bytecode compiles every
module the handler imports on every cold start. The .pyc files are checked-hash: valid whatever
timestamps the zip holds, and ignored should a source ever differ. Their Python version is the
one that ran ``chalice package``, which is also the runtime Chalice chose for the functions.

    python .chalice/precompile.py build/package/deployment.zip
"""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
import tempfile
import zipfile
from importlib.util import cache_from_source

LISTED = "import sys, app; print('\\n'.join(str(getattr(m, '__file__', '')) for m in list(sys.modules.values())))"


def precompile(package: str) -> int:
    with tempfile.TemporaryDirectory() as tree:
        with zipfile.ZipFile(package) as zf:
            zf.extractall(tree)
        env = {**os.environ, "PYTHONPATH": tree, "PYTHONDONTWRITEBYTECODE": "1"}
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        loaded = subprocess.run(
            [sys.executable, "-c", LISTED], cwd=tree, env=env, check=True, stdout=subprocess.PIPE, text=True
        ).stdout.split()
        sources = sorted(f for f in loaded if f.startswith(tree + os.sep) and f.endswith(".py"))
        with zipfile.ZipFile(package, "a", zipfile.ZIP_DEFLATED) as out:
            for source in sources:
                pyc = py_compile.compile(
                    source,
                    cache_from_source(source),
                    dfile=os.path.relpath(source, tree),
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                )
                entry = zipfile.ZipInfo(os.path.relpath(pyc, tree), date_time=(1980, 1, 1, 0, 0, 0))
                entry.external_attr = 0o644 << 16
                with open(pyc, "rb") as f:
                    out.writestr(entry, f.read(), zipfile.ZIP_DEFLATED)
    return len(sources)


if __name__ == "__main__":
    print(f"precompiled {precompile(sys.argv[1])} modules into {sys.argv[1]}")
