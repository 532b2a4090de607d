"""Controller settings, from the environment (osken-manager owns the command line).

  VPC_REST_HOST     address the REST API binds to            (127.0.0.1)
  VPC_REST_PORT     its TCP port                               (8080)
  VPC_STATE         directory of the msgpack store             (/var/lib/vpc-controller)
  VPC_UNDERLAY_MTU  MTU of the hosts' physical network         (1500)
  VPC_LOG_LEVEL     logging level of the controller's modules  (INFO)

The OpenFlow side uses os-ken's own flags: --ofp-tcp-listen-port (6653) and
--ofp-listen-host.
"""
import os
from dataclasses import dataclass


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    rest_host: str = "127.0.0.1"
    rest_port: int = 8080
    state_dir: str = "/var/lib/vpc-controller"
    underlay_mtu: int = 1500
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        d = cls()
        try:
            port = int(env.get("VPC_REST_PORT", d.rest_port))
            mtu = int(env.get("VPC_UNDERLAY_MTU", d.underlay_mtu))
        except ValueError as exc:
            raise ConfigError(f"VPC_REST_PORT and VPC_UNDERLAY_MTU must be integers ({exc})")
        if not 0 < port < 65536:
            raise ConfigError(f"VPC_REST_PORT {port} is not a TCP port")
        if not 576 <= mtu <= 65535:
            raise ConfigError(f"VPC_UNDERLAY_MTU {mtu} must be between 576 and 65535")
        return cls(rest_host=env.get("VPC_REST_HOST", d.rest_host), rest_port=port,
                   state_dir=env.get("VPC_STATE", d.state_dir), underlay_mtu=mtu,
                   log_level=env.get("VPC_LOG_LEVEL", d.log_level).upper())
