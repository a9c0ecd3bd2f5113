from tests.config.config_helpers import fake_interfaces

__all__ = ["fake_interfaces"]  # autouse: every test here sees the fake interfaces
