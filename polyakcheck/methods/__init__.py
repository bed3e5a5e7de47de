"""Methods: SPS*, IAM and the SGD baselines, all on one compiled loop."""

from polyakcheck.methods.spec import CLAIMS, METHOD_NAMES, Method, make_method

__all__ = ["CLAIMS", "METHOD_NAMES", "Method", "make_method"]
