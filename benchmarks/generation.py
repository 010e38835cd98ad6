"""Generation speed, every backend side by side: the same run as `wavenet bench`.

    .venv/bin/python benchmarks/generation.py [--configs A,B] [--json]
"""

import sys

from wavenet_cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
