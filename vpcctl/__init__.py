"""vpcctl: a command line client for the vpc-controller REST API (v1)."""
