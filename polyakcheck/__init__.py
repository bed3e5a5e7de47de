"""polyakcheck: numerical checks of the theory of stochastic Polyak step sizes."""

__version__ = "0.1.0"
