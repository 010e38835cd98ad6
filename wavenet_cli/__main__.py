"""`python -m wavenet_cli ...` runs the `wavenet` command (for a checkout without the script)."""

import sys

from wavenet_cli.main import main

sys.exit(main())
