"""GPAW build configuration for a serial (no MPI) build on Debian/Ubuntu.

Used by ``deploy/install_gpaw.sh`` through ``GPAW_CONFIG``. GPAW's ``setup.py`` executes this
file with ``libraries = ['xc']`` already defined. Needs the Debian packages ``libxc-dev``,
``libopenblas-dev`` and ``libfftw3-dev``. On a cluster with MPI, copy this file, set
``mpi = True`` and ``compiler = 'mpic++'`` (plus ScaLAPACK if wanted).
"""

# flake8: noqa
# ruff: noqa

mpi = False
# GPAW >= 25 builds its C extension as C++ by default; 'gcc' selects the deprecated C build.
compiler = "g++"
libraries = ["xc", "openblas", "fftw3"]
scalapack = False
# GPAW_WITH_FFTW: use FFTW instead of numpy's FFT (key present in GPAW 26.x setup.py).
fftw = True
