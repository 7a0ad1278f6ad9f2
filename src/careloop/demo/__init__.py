"""Demo installations with synthetic data for trying careloop and for tests."""

from careloop.demo.seed import DemoLogin, seed_demo

__all__ = ["DemoLogin", "seed_demo"]
