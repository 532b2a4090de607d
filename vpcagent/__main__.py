"""python -m vpcagent: the same as the vpc-agent console script."""
import sys

from vpcagent.main import main

sys.exit(main())
