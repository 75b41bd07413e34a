import sys

from sd_sweep.cli import main

sys.exit(main())
