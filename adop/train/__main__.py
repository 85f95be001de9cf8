"""``python -m adop.train SCENE_DIR --out RUN_DIR``: see ``adop.train.cli.main``."""

import sys

from adop.train.cli import main

sys.exit(main())
