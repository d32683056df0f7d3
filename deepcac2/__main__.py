import sys

from deepcac2.cli import main

sys.exit(main())
