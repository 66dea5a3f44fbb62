import sys

from xlir.cli import main

sys.exit(main())
