"""Bootstrap helper: check the Python version, and put the project's import roots on the venv path.

`platform/` is a plain folder (a package of that name would hide the standard library's
`platform` module), so its packages (`config`, `tenancy`, `core`) and the repository root
are put on the import path with a `.pth` file instead of an install.
"""

import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info < (3, 11):  # noqa: UP036 - runs under whatever python3 the user has
    sys.exit(
        f"Python 3.11 or newer is needed, found {sys.version.split()[0]}; "
        "run with PYTHON=/path/to/python3.11"
    )

if "--link-paths" in sys.argv:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    (site_packages / "tenant_platform.pth").write_text(f"{ROOT}\n{ROOT / 'platform'}\n")
