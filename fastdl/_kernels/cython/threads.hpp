// OpenMP's thread settings, or their serial stand-ins when the extension was built without OpenMP.
#pragma once
#ifdef _OPENMP
#include <omp.h>
#endif

namespace fdl {

inline bool openmp_built() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

inline void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

inline int get_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int processors() {
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

}  // namespace fdl
