from vpcctl.main import cli

cli(prog_name="vpcctl")
