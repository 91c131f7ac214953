import sys

from ganrt.cli import main

sys.exit(main())
