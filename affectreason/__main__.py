"""`python -m affectreason` (used under `accelerate launch -m affectreason`)."""

import sys

from affectreason.cli import main

sys.exit(main())
