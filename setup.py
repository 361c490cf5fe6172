"""setuptools entry point: the metadata lives in pyproject.toml; this file builds the Cython backend.

Every ``fastdl/_kernels/cython/*.pyx`` becomes an extension module, compiled as C++17 with
OpenMP. The build is optional: without a C++ compiler (or without Cython, numpy or scipy's BLAS
declarations) ``pip install .`` still succeeds and fastdl runs on the numba backend; without
OpenMP the kernels are built serial. Each case is reported in pip's output (``pip install -v``)
and at run time by a warning when fastdl falls back to numba.

Flags, and why:
- ``-O3 -std=c++17``: the kernels are templates over float / double that must inline and vectorize.
- ``-fno-math-errno -fno-trapping-math``: lets gcc inline and if-convert the math without changing
  any result (NaN, inf, signed zeros and subnormals all keep their IEEE meaning).
- never ``-ffast-math``: it folds ``isnan`` away and, on the link line, sets flush-to-zero for the
  whole Python process.
- no ``-march``: the extension must run on any x86-64; hot loops are compiled three times instead
  (``FDL_CLONES`` in ``common.hpp``: AVX-512, AVX2 + FMA, baseline) and picked at load time.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CYTHON_DIR = os.path.join("fastdl", "_kernels", "cython")
COMPILE_ARGS = ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"]
OPENMP_FLAG = "-fopenmp"


def _say(message):
    print(f"fastdl build: {message}", file=sys.stderr)


def _compiler_accepts(compiler, flag):
    """Whether ``compiler`` compiles and links a small OpenMP program with ``flag`` (scikit-learn's
    probe, cut down): some compilers accept -fopenmp but have no runtime to link."""
    code = "#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.cpp")
        with open(source, "w") as f:
            f.write(code)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=[flag])
        except Exception:  # distutils raises CompileError / LinkError, or OSError without a compiler
            return False
    return True


def _write_coefficients_header():
    """``_coefficients.hpp`` from ``fastdl/_kernels/coefficients.py`` (pure data, read without
    importing fastdl, whose runtime dependencies need not be installed at build time)."""
    namespace = {}
    path = os.path.join(HERE, "fastdl", "_kernels", "coefficients.py")
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), namespace)
    with open(os.path.join(HERE, CYTHON_DIR, "_coefficients.hpp"), "w") as f:
        f.write(namespace["cpp_header"]())


class OptionalBuildExt(build_ext):
    """Builds the Cython backend when it can, in parallel, and never fails the install."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self):
        if not self.extensions:
            return
        compiler_ok = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
        if not compiler_ok:
            _say("no C++ compiler found: the Cython backend is not built, fastdl will use numba")
            return
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler

        probe = new_compiler()
        customize_compiler(probe)
        openmp = _compiler_accepts(probe, OPENMP_FLAG)
        if not openmp:
            _say("the compiler has no OpenMP: the Cython backend is built single-threaded")
        for ext in self.extensions:
            ext.extra_compile_args += COMPILE_ARGS + ([OPENMP_FLAG] if openmp else [])
            ext.extra_link_args += [OPENMP_FLAG] if openmp else []
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure leaves the numba backend
            _say(f"building the Cython backend failed ({exc}); fastdl will use numba")


def _extensions():
    """The Cython backend's modules, or none when Cython / numpy are missing at build time."""
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError as exc:
        _say(f"{exc.name} is not installed at build time: the Cython backend is not built")
        return []
    sources = sorted(glob.glob(os.path.join(CYTHON_DIR, "*.pyx")))
    if not sources:
        return []
    _write_coefficients_header()
    modules = [Extension(f"fastdl._kernels.cython.{os.path.basename(path)[:-4]}", [path],
                         language="c++", include_dirs=[numpy.get_include(), CYTHON_DIR],
                         define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
                         optional=True)
               for path in sources]
    directives = {"language_level": 3, "boundscheck": False, "wraparound": False,
                  "cdivision": True, "initializedcheck": False}
    try:
        return cythonize(modules, compiler_directives=directives, nthreads=os.cpu_count() or 1,
                         quiet=True)
    except Exception as exc:  # noqa: BLE001 - Cython's CompileError, or any other failure
        _say(f"Cython could not translate the backend ({exc}); fastdl will use numba")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
