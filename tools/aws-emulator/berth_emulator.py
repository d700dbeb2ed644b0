"""Launcher of Berth's local AWS: moto's server with berth_moto_ext loaded first.

Usage: python berth_emulator.py [-H 127.0.0.1] [-p 5055]  (moto_server's own arguments)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import berth_moto_ext  # noqa: E402,F401  (must be imported before moto parses a template)
from moto.server import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
