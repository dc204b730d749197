"""Drop-in replacements for the APIs of the tools ndshm replaces.

* ``ndshm.compat.sharedarray``: SharedArray's module API (``import ... as sa``).
* ``ndshm.compat.cdxcore``: cdxcore.npshm's functions.
* ``ndshm.compat.isf``: ISF's SharedNumpyStore and its module functions (ISF's
  store directories, read and written in ISF's format).
"""
