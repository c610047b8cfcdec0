"""Rigs: bone maps (bonemaps/), the default conductor (conductor/), and the code that builds test rigs."""
